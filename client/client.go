// Package client is builder's front door: it opens a state directory, owns
// the one lock policy of the store, and offers the verbs the CLI needs.
// cmd/builder imports nothing else of this module (but the sandbox's
// re-exec entry).
//
// The state directory (see ../ARCHITECTURE.md) holds three stores, opened
// together by Open and never exported: the image store (an OCI layout),
// the snapshots and the step cache. Every verb takes the store lock it
// needs for as long as it needs it:
//
//	shared     Build (with its reproducibility check and its outputs),
//	           Publish, Images, Inspect, Tag, Save, Load, Pull, Push,
//	           DiskUsage, Check, Diff, Run (for the container's whole life)
//	exclusive  Prune, Untag
//
// so a prune or an rmi never runs while anything reads or writes blobs, and
// what a load, build or tag is writing cannot be removed under it: a load
// writes its blobs first and tags last, and the prune that would see the
// blobs as unreferenced waits for the load to finish. The lock is an flock
// on <root>/lock, shared by every builder process of the root; a verb
// waits for it until its ctx is done.
//
// Named volumes of Run are not in the store and have their own locks
// (volume.go), so a prune of images neither waits for nor touches them.
//
// The verbs that take no store (Login, Logout) are plain functions.
package client

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/builderdev/builder/cache"
	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/oci"
	"github.com/builderdev/builder/snapshot"
	"github.com/builderdev/builder/source/git"
)

// ErrUsage marks errors caused by bad arguments (exit code 2).
var ErrUsage = executor.ErrUsage

// ErrNotCached: a build with HitsOnly met a step that must run.
var ErrNotCached = executor.ErrNotCached

// ErrNotFound is returned (wrapped) for a missing image, blob or login.
var ErrNotFound = oci.ErrNotFound

// Client is one open state directory. Its methods are safe for concurrent
// use, also by several processes on the same root.
type Client struct {
	root   string
	images *oci.Store
	snaps  *snapshot.Store
	cache  *cache.Store
	git    *git.Store
}

// Open opens (creating when missing) the state directory root.
func Open(ctx context.Context, root string) (*Client, error) {
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	images, err := oci.Open(ctx, root)
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.Open(ctx, filepath.Join(root, "snapshots"))
	if err != nil {
		images.Close()
		return nil, err
	}
	c, err := cache.Open(ctx, filepath.Join(root, "cache"))
	if err != nil {
		images.Close()
		return nil, err
	}
	g, err := git.Open(filepath.Join(root, "cache", "git"))
	if err != nil {
		images.Close()
		return nil, err
	}
	return &Client{root: root, images: images, snaps: snaps, cache: c, git: g}, nil
}

// Root is the state directory.
func (c *Client) Root() string { return c.root }

// Close releases the stores (this process's work dir under <root>/tmp).
// The Client must not be used after Close.
func (c *Client) Close() error { return c.images.Close() }

func (c *Client) stores() executor.Stores {
	return executor.Stores{Images: c.images, Snapshots: c.snaps, Cache: c.cache, Git: c.git}
}

// shared takes the store lock shared (builds, reads, loads, pushes).
func (c *Client) shared(ctx context.Context) (func(), error) { return c.images.Lock(ctx, false) }

// exclusive takes the store lock exclusive (prune, untag).
func (c *Client) exclusive(ctx context.Context) (func(), error) { return c.images.Lock(ctx, true) }
