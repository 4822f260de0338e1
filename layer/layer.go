// Package layer turns file sets into deterministic OCI layer tars and applies
// layer tars to directories. It knows directories and streams, never
// snapshots or the store.
package layer

import (
	"io"
	"io/fs"
	"time"

	"github.com/opencontainers/go-digest"
)

// Compression of a layer blob.
type Compression string

const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
	// Uncompressed writes the plain tar (a rootfs export, not a layer blob
	// for a registry).
	Uncompressed Compression = "uncompressed"
)

// Entry is one file of a layer. Name is slash-separated, relative to the
// layer root, cleaned, with no leading "/" and no trailing "/".
type Entry struct {
	Name     string
	Mode     fs.FileMode // type bits (fs.ModeDir, fs.ModeSymlink, ...) + perm + setuid/setgid/sticky
	UID, GID int
	ModTime  time.Time
	Linkname string // symlink target
	Size     int64  // regular files
	Xattrs   map[string]string
	Devmajor uint32
	Devminor uint32
	// Whiteout writes ".wh.<base>" instead of the entry (the rest is ignored).
	Whiteout bool
	// Opaque writes "<Name>/.wh..wh..opq" after this directory entry.
	Opaque bool
	// Dev and Ino identify the source inode; two regular-file entries with the
	// same non-zero (Dev, Ino) become one file and a hardlink to it.
	Dev, Ino uint64
	// Open returns the content of a regular file.
	Open func() (io.ReadCloser, error)
}

// PackOptions control Pack. The zero value writes gzip with mtimes as given
// (tar mtimes always have whole-second precision).
type PackOptions struct {
	Compression Compression
	// SourceDateEpoch, when non-nil, clamps every mtime to at most this time.
	SourceDateEpoch *time.Time
}

// Packed describes a written layer blob.
type Packed struct {
	DiffID    digest.Digest // sha256 of the uncompressed tar
	Digest    digest.Digest // sha256 of the compressed bytes written to w
	Size      int64         // compressed size
	MediaType string
}

// Below describes what the lower layers hold at a layer name ("a/b"):
// its stat and a host path to read it (nil Info: nothing there).
type Below func(name string) (info fs.FileInfo, host string, err error)

// ChangeOptions tune Changes.
type ChangeOptions struct {
	// UserXattr says the overlay was mounted with userxattr (in a user
	// namespace): its marks are user.overlay.*, which otherwise are a
	// file's own attributes.
	UserXattr bool
	// SameDir, when set, is called (after the walk) for each directory
	// of the upper dir left out as the same as the one below (only its
	// mtime may differ) and holding nothing recorded, so that the caller
	// can give the upper dir the time the layer implies.
	SameDir func(name string, below fs.FileInfo) error
	// BelowDir, when set, lists the names in a directory of the layers
	// below: a directory the upper dir made anew (opaque) is then written
	// as BuildKit's differ writes it, a whiteout for each entry it no
	// longer has and only what differs, instead of an opaque marker and
	// all its content.
	BelowDir func(name string) ([]string, error)
}

// WhiteoutMode says how Apply treats OCI whiteouts.
type WhiteoutMode int

const (
	// WhiteoutOverlay converts whiteouts to overlay form: ".wh.x" becomes a
	// 0/0 char device x, ".wh..wh..opq" sets trusted.overlay.opaque=y.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutDelete removes the whited-out paths (flattening layers in order).
	WhiteoutDelete
	// WhiteoutReject fails on any whiteout entry (plain archives, ADD).
	WhiteoutReject
)

// ApplyOptions control Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// DiffID, when set, is verified against the uncompressed stream.
	DiffID digest.Digest
	// Below, when set, looks up a path (slash-separated, relative) in the
	// layers below this one: a parent dir the tar does not list gets the
	// owner, mode and mtime it has there. Else it is root-owned 0755 with
	// time 0.
	Below func(name string) (fs.FileInfo, error)
	// UnmappedOwners: an owner the user namespace does not map (a
	// namespace of one id) is left as the applier's own instead of failing.
	UnmappedOwners bool
	// UserXattr marks opaque dirs (WhiteoutOverlay) with
	// user.overlay.opaque, as overlayfs mounted with userxattr reads them
	// (in a user namespace), instead of trusted.overlay.opaque.
	UserXattr bool
}

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
)
