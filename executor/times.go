package executor

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/layer"
	"golang.org/x/sys/unix"
)

// stampRunTimes keeps the build's clock out of a RUN layer built without
// SOURCE_DATE_EPOCH (with one, Pack clamps every newer time to it, as
// BuildKit's rewrite-timestamp does, and the snapshot keeps real times).
//
// Every entry of the upper dir whose mtime comes from the step's run (at or
// after since, less a second for the kernel's coarse file clock), and the
// upper dir itself, get the time depth seconds after the Unix epoch, where
// depth is the layer's position in the image: a fixed time, and a later one
// for each later layer, so that make-style tools still see a file a later
// RUN changed as newer than what an earlier RUN built from it. The times are
// set on disk too: the snapshot holds what the layer holds, so later steps
// (COPY --from, cp -p, tar) see the same times whether this rootfs was just
// built, found in the cache or unpacked from the blob. Older times
// (unpacked archives, packages, touch -d) are kept.
func stampRunTimes(upper string, ents []layer.Entry, since time.Time, depth int) error {
	to := time.Unix(int64(depth), 0)
	cut := since.Unix() - 1
	ts := unix.NsecToTimespec(to.UnixNano())
	times := []unix.Timespec{ts, ts}
	set := func(name string) error {
		// The sandbox is gone: nothing changes upper while we walk it, and
		// Changes lists no entry below a symlink.
		p := filepath.Join(upper, filepath.FromSlash(name))
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set time of /%s: %w", name, err)
		}
		return nil
	}
	for i := range ents {
		e := &ents[i]
		if e.Whiteout || e.ModTime.Unix() < cut {
			continue
		}
		if err := set(e.Name); err != nil {
			return err
		}
		e.ModTime = to
	}
	// The root is no entry, but COPY --from=stage / copies its time.
	return set("")
}
