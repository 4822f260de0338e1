package client

import (
	"context"
	"errors"
	"slices"
	"testing"
)

func TestRunArgv(t *testing.T) {
	ep, cmd := []string{"ep"}, []string{"cmd"}
	for _, tc := range []struct {
		name       string
		entrypoint []string
		args       []string
		imgEP      []string
		imgCmd     []string
		want       []string
	}{
		{"cmd only", nil, nil, nil, cmd, []string{"cmd"}},
		{"args replace cmd", nil, []string{"a"}, ep, cmd, []string{"ep", "a"}},
		{"entrypoint and cmd", nil, nil, ep, cmd, []string{"ep", "cmd"}},
		{"--entrypoint drops cmd", []string{"x"}, nil, ep, cmd, []string{"x"}},
		{"--entrypoint with args", []string{"x"}, []string{"a"}, ep, cmd, []string{"x", "a"}},
		{`--entrypoint "" keeps cmd`, []string{}, nil, ep, cmd, []string{"cmd"}},
		{`--entrypoint "" with args`, []string{}, []string{"a"}, ep, cmd, []string{"a"}},
		{"nothing", nil, nil, nil, nil, nil},
	} {
		got, err := runArgv(RunOptions{Entrypoint: tc.entrypoint, Args: tc.args}, tc.imgEP, tc.imgCmd)
		if tc.want == nil {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%s: %v, %v; want a usage error", tc.name, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestRunEnv(t *testing.T) {
	got := runEnv([]string{"PATH=/img", "A=img", "HOME=/h"}, RunOptions{Env: []string{"A=flag", "B=b"}, TTY: true}, "host", "/root")
	want := []string{"PATH=/img", "HOSTNAME=host", "A=flag", "HOME=/h", "B=b", "TERM=xterm"}
	if !slices.Equal(got, want) {
		t.Errorf("runEnv = %q, want %q", got, want)
	}
}

// TestVolumeLocks: a volume a run holds is neither removed nor pruned.
func TestVolumeLocks(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, freeA, err := c.openVolume("busy")
	if err != nil {
		t.Fatal(err)
	}
	_, freeB, err := c.openVolume("idle")
	if err != nil {
		t.Fatal(err)
	}
	freeB()
	if err := c.RemoveVolumes(ctx, []string{"busy"}); !errors.Is(err, errVolumeInUse) {
		t.Errorf("rm of a volume in use: %v", err)
	}
	removed, err := c.PruneVolumes(ctx)
	if err != nil || !slices.Equal(removed, []string{"idle"}) {
		t.Errorf("prune removed %q, %v; want idle only", removed, err)
	}
	vs, err := c.Volumes(ctx)
	if err != nil || len(vs) != 1 || vs[0].Name != "busy" || !vs[0].InUse {
		t.Errorf("volumes = %+v, %v", vs, err)
	}
	freeA()
	if err := c.RemoveVolumes(ctx, []string{"busy", "missing"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("rm busy, missing: %v; want not found for missing", err)
	}
	if vs, _ := c.Volumes(ctx); len(vs) != 0 {
		t.Errorf("volumes after rm: %+v", vs)
	}
}
