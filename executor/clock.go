package executor

import (
	"time"

	"github.com/builderdev/builder/layer"
)

// clock is the one place a build decides what time it is. It is made once
// per build from SOURCE_DATE_EPOCH (or its absence) and answers every
// question that depends on it; nothing else in the engine reads the epoch.
//
// With an epoch, as BuildKit's rewrite-timestamp: the image's and every
// history entry's created time are the epoch, files the build makes carry
// it, and packing clamps every newer mtime to it. Without one, output is
// still bit-identical across rebuilds: files the build makes get time 0,
// RUN output is stamped after the rootfs' newest time (stampRunTimes), and
// the created times are those of the cache records (the real time the
// step first ran).
type clock struct {
	epoch *time.Time // nil: no SOURCE_DATE_EPOCH
}

func newClock(epoch *time.Time) clock {
	if epoch != nil {
		e := epoch.UTC()
		epoch = &e
	}
	return clock{epoch: epoch}
}

// recordTime is what a new cache record keeps as its creation: always the
// real time (prune --filter until=... reads it).
func (c clock) recordTime() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// layerTime is the history time of a layer made from a record created at
// recorded: the epoch when set.
func (c clock) layerTime(recorded string) time.Time {
	if c.epoch != nil {
		return *c.epoch
	}
	t, err := time.Parse(time.RFC3339Nano, recorded)
	if err != nil {
		return time.Now().UTC()
	}
	return t.UTC()
}

// imageTime is the image's created time: the epoch, else the newest layer
// this build added, else the base image's, else the Unix epoch.
func (c clock) imageTime(newestLayer, base *time.Time) time.Time {
	switch {
	case c.epoch != nil:
		return *c.epoch
	case newestLayer != nil:
		return *newestLayer
	case base != nil:
		return *base
	}
	return time.Unix(0, 0).UTC()
}

// rewritesHistory reports whether history entries this build wrote take
// the image time (with an epoch) rather than keeping their own.
func (c clock) rewritesHistory() bool { return c.epoch != nil }

// fileTime is the mtime of files the build makes itself (the parents a
// COPY creates, heredocs, WORKDIR dirs, a download with no Last-Modified).
func (c clock) fileTime() time.Time {
	if c.epoch != nil {
		return *c.epoch
	}
	return time.Unix(0, 0).UTC()
}

// packClamp is the time layer.Pack clamps newer mtimes to (nil: none).
func (c clock) packClamp() *time.Time { return c.epoch }

// stampsRun reports whether RUN output is stamped after the rootfs' newest
// time (without an epoch; with one, packing clamps instead and the
// snapshot keeps real times).
func (c clock) stampsRun() bool { return c.epoch == nil }

// keyEpoch is the clock's part of a step's cache key: a record names one
// blob, and clamped layers are other blobs. 0 without an epoch.
func (c clock) keyEpoch() int64 {
	if c.epoch == nil {
		return 0
	}
	return c.epoch.Unix()
}

// newest is the newest mtime among ents as packed (clamped to the epoch
// when set), in Unix seconds.
func (c clock) newest(ents []layer.Entry) int64 {
	var n int64
	for _, e := range ents {
		if !e.Whiteout && !e.ModTime.IsZero() {
			n = max(n, e.ModTime.Unix())
		}
	}
	return c.clampNewest(n)
}

// clampNewest is n, a newest mtime in Unix seconds, clamped to the epoch
// when set.
func (c clock) clampNewest(n int64) int64 {
	if c.epoch != nil {
		n = min(n, c.epoch.Unix())
	}
	return n
}
