package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/builderdev/builder/imagediff"
	"github.com/builderdev/builder/oci"
	"github.com/spf13/cobra"
)

// Exit codes of diff and build --check-reproducible, as diff(1): 0 the
// images are identical, 1 they differ, 2 trouble (an image cannot be read).
const exitDiffer = 1

func newDiffCmd(g *globalFlags) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "diff [flags] A B",
		Short: "Compare two images: config field by field, layers path by path",
		Long: `Compare two images: the manifest and config field by field, then each
pair of layers path by path (added, removed, or changed and in what:
content, mode, uid/gid, mtime, xattrs, link target, ...).

A and B are each an image of the store (name:tag, digest or image ID), or a
path to an OCI tar, an OCI layout dir or a docker-archive tar (an existing
path wins; oci:PATH, oci-archive:PATH and docker-archive:PATH force a path).

Exit status: 0 identical, 1 different, 2 trouble.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "text" && format != "json" {
				return usagef("--format must be text or json, not %q", format)
			}
			b, err := openBuilder(cmd, g)
			if err != nil {
				return exitError{2, err}
			}
			unlock, err := b.Store.Lock(cmd.Context(), false) // no prune or rmi meanwhile
			if err != nil {
				return exitError{2, err}
			}
			defer unlock()
			var sides [2]imagediff.Image
			for i, arg := range args {
				if sides[i], err = openImage(cmd.Context(), b.Store, arg); err != nil {
					return exitError{2, err}
				}
			}
			rep, err := imagediff.Compare(cmd.Context(), sides[0], sides[1], imagediff.Options{})
			if err != nil {
				return exitError{2, err}
			}
			if err := writeReport(cmd.OutOrStdout(), rep, format); err != nil {
				return exitError{2, err}
			}
			if !rep.Identical {
				return exitError{code: exitDiffer}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output: text or json")
	return cmd
}

func writeReport(w io.Writer, rep *imagediff.Report, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	return rep.WriteText(w)
}

// openImage finds arg in the store, or loads the archive or layout dir it
// names into a scratch store under the store's tmp (removed when this
// process's store is closed; the input itself is only read).
func openImage(ctx context.Context, store *oci.Store, arg string) (imagediff.Image, error) {
	path, forced := arg, false
	for _, p := range []string{"oci:", "oci-archive:", "docker-archive:"} {
		if rest, ok := strings.CutPrefix(arg, p); ok {
			path, forced = rest, true
			break
		}
	}
	if _, err := os.Stat(path); err != nil {
		if forced {
			return imagediff.Image{}, fmt.Errorf("read %s: %w", arg, err)
		}
		im, rerr := store.Resolve(arg)
		if rerr != nil {
			return imagediff.Image{}, fmt.Errorf("%s: no such file, dir or image in the store", arg)
		}
		return imagediff.Image{Name: arg, Manifest: im.Descriptor, Blobs: store}, nil
	}
	dir, err := store.TempDir("diff-")
	if err != nil {
		return imagediff.Image{}, err
	}
	scratch, err := oci.Open(ctx, dir)
	if err != nil {
		return imagediff.Image{}, err
	}
	names, err := scratch.Load(ctx, path)
	if err != nil {
		return imagediff.Image{}, fmt.Errorf("%w (diff reads OCI tars, OCI layout dirs and docker-archive tars)", err)
	}
	if len(names) != 1 {
		return imagediff.Image{}, fmt.Errorf("%s holds %d images (%s): load it with `builder load -i` and name one",
			path, len(names), strings.Join(names, ", "))
	}
	im, err := scratch.Resolve(names[0])
	if err != nil {
		return imagediff.Image{}, fmt.Errorf("%s: %w", path, err)
	}
	return imagediff.Image{Name: arg, Manifest: im.Descriptor, Blobs: scratch}, nil
}

// exitError ends the command with code, printing err when there is one.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e exitError) Unwrap() error { return e.err }
