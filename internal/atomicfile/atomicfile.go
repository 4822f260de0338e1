// Package atomicfile replaces a file so that, whatever happens, the file
// holds either its old content or the complete new content: never a part of
// it, never a mix.
//
// Write creates a temp file, lets the caller fill it, sets its mode, fsyncs
// it, renames it over the target and fsyncs the target's directory:
//
//	create tmp -> write -> chmod -> fsync -> close -> rename -> fsync dir
//
// Guarantees:
//   - Readers see the old file or the new one, never a file being written
//     (rename(2) is atomic), also when the writing process is killed.
//   - Once Write returns nil, the new content is on disk: a crash of the
//     machine after that keeps it. A crash while Write runs leaves the old
//     content (or no file, if there was none) or the complete new one.
//   - When Write returns an error before the rename, the target is untouched
//     and the temp file is removed.
//
// What it does not do:
//   - Serialize writers: two concurrent Writes of one path both succeed and
//     the last rename wins. Callers that read-modify-write hold a lock.
//   - Clean up after a crash: a temp file of a killed process stays where it
//     was made. Callers put it in a directory they sweep (Options.TempDir,
//     e.g. the store's tmp/, emptied on open) or give it a pattern they
//     recognize.
//   - Keep anything of the old file but its name: the owner, mode and
//     xattrs are the new file's. A symlink at path is replaced, not
//     followed.
//   - Work across file systems: the temp dir must be on the file system of
//     path, or the rename fails (EXDEV).
//
// With Options.NoSync the data and the rename are not fsynced: readers
// still never see a partial file, but after a machine crash the file may
// hold the old content, the new content, or be empty or torn. Use it only
// for data that is checked when read and may be lost (stat caches).
package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Options tunes Write. The zero value writes the temp file next to path
// and fsyncs.
type Options struct {
	// TempDir is where the temp file is made; it must be on path's file
	// system. "" means path's directory.
	TempDir string
	// TempPattern names the temp file as os.CreateTemp does (the last "*"
	// is replaced by a random string). "" means "." + base(path) + ".tmp-*".
	TempPattern string
	// NoSync skips both fsyncs: atomic for readers, not durable (see the
	// package doc).
	NoSync bool
}

// Write replaces path with what write writes, with mode perm (umask is not
// applied). Errors from write are returned as they are; other errors are
// the *fs.PathError or *os.LinkError of the failed step.
func Write(path string, perm fs.FileMode, write func(io.Writer) error, opts Options) error {
	dir := opts.TempDir
	if dir == "" {
		dir = filepath.Dir(path)
	}
	pattern := opts.TempPattern
	if pattern == "" {
		pattern = "." + filepath.Base(path) + ".tmp-*"
	}
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := fill(f, perm, write, !opts.NoSync); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if opts.NoSync {
		return nil
	}
	// The file is in place: a failure here means only that the rename may
	// not survive a crash.
	return SyncDir(filepath.Dir(path))
}

// fill writes, chmods, fsyncs (when sync) and closes f.
func fill(f *os.File, perm fs.FileMode, write func(io.Writer) error, sync bool) error {
	err := write(f)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFile is Write of data, as os.WriteFile is for os.OpenFile.
func WriteFile(path string, data []byte, perm fs.FileMode, opts Options) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, opts)
}

// SyncDir fsyncs the directory dir, making the creation, rename or removal
// of its entries durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
