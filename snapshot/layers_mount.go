package snapshot

import (
	"os"
	"path/filepath"
	"strings"
)

// LayersMount shows layer dirs (top first; or one file) at target, read
// only: a bind of a single one, else an overlay. rw gives it a throwaway
// upper dir under tmp instead, whose writes nobody reads.
func LayersMount(layers []string, target string, rw bool, tmp string) (Mount, error) {
	if !rw && len(layers) == 1 {
		return Mount{Type: "bind", Source: layers[0], Target: target, Options: []string{"rbind", "ro"}}, nil
	}
	if fi, err := os.Stat(layers[0]); err == nil && !fi.IsDir() {
		// A file cannot be an overlay: bind it, read-only.
		return Mount{Type: "bind", Source: layers[0], Target: target, Options: []string{"rbind", "ro"}}, nil
	}
	opts := []string{"lowerdir=" + strings.Join(layers, ":")}
	if !rw {
		opts = append(opts, "ro")
	} else {
		dir, err := os.MkdirTemp(tmp, "mount-")
		if err != nil {
			return Mount{}, err
		}
		up, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
		for _, d := range []string{up, work} {
			err := os.Mkdir(d, 0o755)
			if err == nil {
				err = os.Chmod(d, 0o755) // the mount's root: not narrowed by the umask
			}
			if err != nil {
				return Mount{}, err
			}
		}
		opts = append(opts, "upperdir="+up, "workdir="+work)
	}
	opts = overlayOptions(opts...)
	return Mount{Type: "overlay", Source: "overlay", Target: target, Options: opts}, nil
}
