package executor

import (
	"context"
	"testing"
	"time"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/parser"
	"github.com/opencontainers/go-digest"
)

// TestFlight: the first build to reach a key leads; the others wait for
// its record and never run the step.
func TestFlight(t *testing.T) {
	sh := newShared(true)
	key := digest.FromString("step")
	f, leader := sh.join(key)
	if !leader {
		t.Fatal("the first join does not lead")
	}
	g, leader2 := sh.join(key)
	if leader2 || g != f {
		t.Fatal("the second join leads")
	}
	if _, other := sh.join(digest.FromString("other")); !other {
		t.Fatal("another key does not get its own flight")
	}
	bd := &build{sh: sh, rep: nopReporter{}, clock: newClock(nil)}
	done := make(chan error)
	var follower imageState
	go func() {
		done <- bd.follow(context.Background(), &stage{}, &follower, 2, fsStep{createdBy: "RUN x"}, g, key)
	}()
	select {
	case <-done:
		t.Fatal("the follower did not wait for the leader")
	case <-time.After(20 * time.Millisecond):
	}
	lead := &imageState{records: []cache.Record{{Key: key, Layer: digest.FromString("layer"), DiffID: digest.FromString("diff")}}}
	f.finish(lead, nil)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if follower.key != key || len(follower.layers) != 1 || follower.layers[0].Digest != digest.FromString("layer") || !follower.lastHit {
		t.Fatalf("the follower's state: key %s, layers %v", follower.key, follower.layers)
	}
}

// TestPlatformPrefix: BuildKit's step names in a multi-platform build.
func TestPlatformPrefix(t *testing.T) {
	bd := &build{sh: newShared(true)}
	cases := []struct {
		arch, variant, target, want string
	}{
		{"amd64", "", "", "linux/amd64 "},
		{"amd64", "", "linux/amd64", "linux/amd64 "},
		{"amd64", "", "linux/arm64", "linux/amd64->arm64 "},
		{"amd64", "", "linux/arm/v7", "linux/amd64->arm/v7 "},
		{"arm64", "v8", "", "linux/arm64 "}, // the default variant is dropped
		{"amd64", "", "windows/amd64", "linux/amd64->windows/amd64 "},
	}
	for _, c := range cases {
		st := &imageState{}
		st.img.OS, st.img.Architecture, st.img.Variant = "linux", c.arch, c.variant
		if c.target != "" {
			st.args = parser.Vars{}.Set("TARGETPLATFORM", c.target)
		}
		if got := bd.platformPrefix(st); got != c.want {
			t.Errorf("%s/%s with TARGETPLATFORM %q: %q, want %q", c.arch, c.variant, c.target, got, c.want)
		}
	}
	if got := (&build{sh: newShared(false)}).platformPrefix(&imageState{}); got != "" {
		t.Errorf("one platform: prefix %q", got)
	}
}
