package executor

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/layer"
	"golang.org/x/sys/unix"
)

// stampRunTimes keeps the build's clock out of RUN layers: every entry of
// the upper dir whose mtime is from the step's run (at or after since, less
// a second for the kernel's coarse file clock) gets the time to instead,
// in the layer and on disk. The snapshot then holds what the layer holds,
// so later steps (COPY --from, cp -p, tar) see the same times whether the
// rootfs came from this run, the cache or an unpacked blob. Older times
// (unpacked archives, packages, touch -d) are kept; SOURCE_DATE_EPOCH
// clamps those at pack time.
func stampRunTimes(upper string, ents []layer.Entry, since, to time.Time) error {
	cut := since.Unix() - 1
	ts := unix.NsecToTimespec(to.UnixNano())
	times := []unix.Timespec{ts, ts}
	for i := range ents {
		e := &ents[i]
		if e.Whiteout || e.ModTime.Unix() < cut {
			continue
		}
		// The sandbox is gone: nothing changes upper while we walk it, and
		// Changes lists no entry below a symlink.
		p := filepath.Join(upper, filepath.FromSlash(e.Name))
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, times, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("set time of /%s: %w", e.Name, err)
		}
		e.ModTime = to
	}
	return nil
}
