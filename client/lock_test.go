package client

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLockPolicy: every verb takes the store lock in the mode the package
// doc gives. While another process (another Client on the same root) holds
// the lock exclusive, every verb waits; while it holds it shared, only
// prune and untag wait.
func TestLockPolicy(t *testing.T) {
	root := t.TempDir()
	ctx := context.Background()
	holder, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	c, err := Open(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join(t.TempDir(), "out.tar")
	verbs := []struct {
		name      string
		exclusive bool
		run       func(ctx context.Context) error
	}{
		{"Build", false, func(ctx context.Context) error { _, err := c.Build(ctx, BuildOptions{}); return err }},
		{"Publish", false, func(ctx context.Context) error { return c.Publish(ctx, "x", PublishOptions{}) }},
		{"Images", false, func(ctx context.Context) error { _, err := c.Images(ctx); return err }},
		{"Inspect", false, func(ctx context.Context) error { _, err := c.Inspect(ctx, "x"); return err }},
		{"Tag", false, func(ctx context.Context) error { return c.Tag(ctx, "x", "y:1") }},
		{"Save", false, func(ctx context.Context) error { return c.Save(ctx, out, FormatOCI, "x") }},
		{"Load", false, func(ctx context.Context) error { _, err := c.Load(ctx, out+".missing"); return err }},
		{"Pull", false, func(ctx context.Context) error {
			_, err := c.Pull(ctx, "127.0.0.1:1/x:1", RegistryOptions{})
			return err
		}},
		{"Push", false, func(ctx context.Context) error { return c.Push(ctx, "x", "", RegistryOptions{}) }},
		{"DiskUsage", false, func(ctx context.Context) error { _, err := c.DiskUsage(ctx); return err }},
		{"Check", false, func(ctx context.Context) error { _, err := c.Check(ctx); return err }},
		{"Diff", false, func(ctx context.Context) error { _, err := c.Diff(ctx, "x", "y"); return err }},
		{"Run", false, func(ctx context.Context) error { return c.Run(ctx, RunOptions{Image: "x"}) }},
		{"Prune", true, func(ctx context.Context) error { _, err := c.Prune(ctx, PruneOptions{}); return err }},
		{"Untag", true, func(ctx context.Context) error { _, err := c.Untag(ctx, "y:1"); return err }},
	}
	blocked := func(run func(context.Context) error) bool {
		ctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
		defer cancel()
		err := run(ctx)
		return errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "lock store")
	}
	for _, held := range []struct {
		name string
		take func(context.Context) (func(), error)
	}{{"exclusive", holder.exclusive}, {"shared", holder.shared}} {
		unlock, err := held.take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range verbs {
			want := held.name == "exclusive" || v.exclusive
			if got := blocked(v.run); got != want {
				t.Errorf("%s while the lock is held %s: waited=%t, want %t", v.name, held.name, got, want)
			}
		}
		unlock()
	}
	// And with the lock free, nothing waits.
	for _, v := range verbs {
		if blocked(v.run) {
			t.Errorf("%s waited with the lock free", v.name)
		}
	}
}
