package executor

import (
	"testing"
	"time"

	"github.com/builderdev/builder/layer"
	"github.com/opencontainers/go-digest"
)

// TestStepKeysDistinct: inputs that the old glued-string keys could not
// tell apart ("bind:%s:%s", "src->dest", "dest:digest") get distinct keys,
// and every layer-shaping option is part of the key.
func TestStepKeysDistinct(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	gz := &build{clock: newClock(nil)}
	zst := &build{clock: newClock(nil), opts: Options{Compression: layer.Zstd}}
	sde := &build{clock: newClock(&epoch)}
	parent := digest.FromString("parent")
	cases := []struct {
		name string
		bd   *build
		id   any
	}{
		{"bind a:b at /t", gz, runKey{Op: "RUN", Args: []string{"true"}, Mounts: []mountKey{{Type: "bind", Target: "/t", Source: "a:b"}}}},
		{"bind b at /t:a", gz, runKey{Op: "RUN", Args: []string{"true"}, Mounts: []mountKey{{Type: "bind", Target: "/t:a", Source: "b"}}}},
		{"stage a->b to c", gz, copyKey{Op: "COPY", Dest: "/d", Items: []itemKey{{Kind: "stage", Src: "a->b", Dest: "c"}}}},
		{"stage a to b->c", gz, copyKey{Op: "COPY", Dest: "/d", Items: []itemKey{{Kind: "stage", Src: "a", Dest: "b->c"}}}},
		{"heredoc to x:y", gz, copyKey{Op: "COPY", Dest: "/d", Items: []itemKey{{Kind: "heredoc", Dest: "x:y"}}}},
		{"heredoc to x", gz, copyKey{Op: "COPY", Dest: "/d", Items: []itemKey{{Kind: "heredoc", Dest: "x", Content: "y"}}}},
		{"chown with a space", gz, copyKey{Op: "COPY", Chown: "1 chmod=755", Dest: "/d"}},
		{"chown and chmod", gz, copyKey{Op: "COPY", Chown: "1", Chmod: "755", Dest: "/d"}},
		{"COPY --from --parents", gz, copyKey{Op: "COPY", Dest: "/d", From: parent, Srcs: []string{"a/b"}, Parents: true}},
		{"COPY --from", gz, copyKey{Op: "COPY", Dest: "/d", From: parent, Srcs: []string{"a/b"}}},
		{"script", gz, runKey{Op: "RUN", Script: "#!/bin/sh\ntrue\n"}},
		{"argv of the script", gz, runKey{Op: "RUN", Args: []string{"#!/bin/sh\ntrue\n"}}},
		{"workdir", gz, workdirKey{Op: "WORKDIR", Path: "/w"}},
		{"workdir, zstd", zst, workdirKey{Op: "WORKDIR", Path: "/w"}},
		{"workdir, SOURCE_DATE_EPOCH", sde, workdirKey{Op: "WORKDIR", Path: "/w"}},
	}
	seen := map[digest.Digest]string{}
	for _, c := range cases {
		k := c.bd.key(parent, c.id)
		if prev, dup := seen[k]; dup {
			t.Errorf("%q and %q share the key %s", c.name, prev, k)
		}
		seen[k] = c.name
		if again := c.bd.key(parent, c.id); again != k {
			t.Errorf("%q: key not stable", c.name)
		}
	}
	if gz.key(parent, workdirKey{Op: "WORKDIR", Path: "/w"}) == gz.key(digest.FromString("other"), workdirKey{Op: "WORKDIR", Path: "/w"}) {
		t.Error("the parent key is not part of the key")
	}
}

// TestClock: every time question has one answer per build.
func TestClock(t *testing.T) {
	epoch := time.Unix(1700000000, 0)
	base := time.Unix(1600000000, 0).UTC()
	layerT := time.Unix(1650000000, 0).UTC()
	with, without := newClock(&epoch), newClock(nil)
	if got := with.imageTime(&layerT, &base); !got.Equal(epoch) {
		t.Errorf("imageTime with epoch = %v", got)
	}
	if got := without.imageTime(&layerT, &base); !got.Equal(layerT) {
		t.Errorf("imageTime = %v, want the newest layer's", got)
	}
	if got := without.imageTime(nil, &base); !got.Equal(base) {
		t.Errorf("imageTime = %v, want the base's", got)
	}
	if got := without.imageTime(nil, nil); got.Unix() != 0 {
		t.Errorf("imageTime of nothing = %v", got)
	}
	if got := with.layerTime("2020-01-01T00:00:00Z"); !got.Equal(epoch) {
		t.Errorf("layerTime with epoch = %v", got)
	}
	if got := without.layerTime("2020-01-01T00:00:00Z"); got.Year() != 2020 {
		t.Errorf("layerTime = %v, want the record's", got)
	}
	if with.fileTime().Unix() != epoch.Unix() || without.fileTime().Unix() != 0 {
		t.Error("fileTime: want the epoch, else 0")
	}
	if with.stampsRun() || !without.stampsRun() || !with.rewritesHistory() || without.rewritesHistory() {
		t.Error("stampsRun/rewritesHistory: want exactly one of clamp (epoch) and stamp (none)")
	}
	if with.packClamp() == nil || without.packClamp() != nil || with.keyEpoch() != epoch.Unix() || without.keyEpoch() != 0 {
		t.Error("packClamp/keyEpoch do not follow the epoch")
	}
	ents := []layer.Entry{{Name: "a", ModTime: time.Unix(1800000000, 0)}, {Name: "b", ModTime: time.Unix(100, 0)}, {Name: ".wh.c", Whiteout: true, ModTime: time.Unix(1900000000, 0)}}
	if got := without.newest(ents); got != 1800000000 {
		t.Errorf("newest = %d", got)
	}
	if got := with.newest(ents); got != epoch.Unix() {
		t.Errorf("newest with epoch = %d, want it clamped", got)
	}
}
