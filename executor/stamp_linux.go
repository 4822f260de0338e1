package executor

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"time"

	"github.com/builderdev/builder/layer"
	"golang.org/x/sys/unix"
)

// stampRunTimes keeps the build's clock out of a RUN layer built without
// SOURCE_DATE_EPOCH (with one, Pack clamps every newer time to it, as
// BuildKit's rewrite-timestamp does, and the snapshot keeps real times).
//
// An entry of the upper dir whose mtime the step set from the clock (at or
// after since, less a second for the kernel's coarse file clock, and not
// the time the same path has below: a chown or chmod copies a file up with
// its old time) gets newest+1 s instead, newest bounding the times of the
// parent rootfs: later than every file the RUN could have read, so make
// and autotools still see their outputs as newer than their sources, and
// a fixed time for fixed inputs. The upper dir itself takes the time of the
// root below, as an unpacked layer does. The times are set on disk too: the
// snapshot holds what the layer holds, so later steps (COPY --from, cp -p,
// tar) see the same times whether this rootfs was just built, found in the
// cache or unpacked from the blob.
func stampRunTimes(upper string, ents []layer.Entry, since time.Time, newest int64, below func(p string) (fs.FileInfo, error)) error {
	to := time.Unix(newest+1, 0)
	cut := since.Add(-time.Second)
	set := func(name string, t time.Time) error { return setTime(upper, name, t) }
	// Dirs the step made: nothing under them is below, no lookup needed
	// (entries come parents first), so npm install costs one lookup.
	made := map[string]bool{}
	for i := range ents {
		e := &ents[i]
		if e.Whiteout || e.ModTime.Before(cut) {
			continue
		}
		if made[path.Dir(e.Name)] {
			if e.Mode.IsDir() {
				made[e.Name] = true
			}
		} else {
			// Not found below (or not resolvable there): the step made it.
			fi, err := below("/" + e.Name)
			if err == nil && fi.ModTime().Equal(e.ModTime) {
				continue
			}
			if (err != nil || e.Opaque) && e.Mode.IsDir() { // opaque: nothing below shows
				made[e.Name] = true
			}
		}
		if err := set(e.Name, to); err != nil {
			return err
		}
		e.ModTime = to
	}
	root := time.Unix(0, 0)
	if fi, err := below("/"); err == nil {
		root = fi.ModTime()
	}
	return set("", root)
}

// setTime sets the times of the entry name of upper (not followed). The
// sandbox is gone: nothing changes upper meanwhile, and Changes lists no
// entry below a symlink.
func setTime(upper, name string, t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	p := filepath.Join(upper, filepath.FromSlash(name))
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set time of /%s: %w", name, err)
	}
	return nil
}
