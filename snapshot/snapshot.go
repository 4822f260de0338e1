// Package snapshot keeps unpacked layers as directories in overlay-lower
// format, named by chain ID, and active (upper+work) directories for a
// running step. It returns mounts as data and knows nothing of tar: the store
// never mounts anything itself; Mount.Mount performs one mount for whoever
// runs the process (the sandbox child, inside its own mount namespace).
//
// Lifecycle:
//
//	a, _ := s.Prepare(ctx, parentChainID)   // "" for a base layer
//	... write into a.Upper (unpack a layer) or mount a.Mounts(...) in a sandbox
//	s.Commit(ctx, a, chainID)               // a.Upper becomes the committed dir of chainID
//	// or s.Remove(a) to drop it
//
// Layout under the store's root:
//
//	<id>/fs              the layer's files (whiteouts are 0/0 char devices,
//	                     opaque dirs carry trusted.overlay.opaque=y)
//	<id>/parent          parent chain ID, empty for a base layer
//	<id>/chain           chain ID
//	by-chain/<hex>       symlink to ../<id>: the only way in; a committed
//	                     snapshot exists once this link exists
//	active/<pid>-<rand>/ upper/ and work/ of a prepared snapshot
//	tmp/<pid>-<rand>     work in progress
//
// Ids are six base32 characters, so a lower dir costs len(root)+10 bytes of
// overlay options: with root /var/lib/builder/snapshots about 100 layers fit
// in one mount(2) call; longer stacks are mounted by Mount.Mount with the
// fsconfig(2) "lowerdir+" option (Linux 6.8+), which has no such limit.
//
// The store is shared by concurrent builder processes. Nothing is locked:
// every change is a rename or a symlink(2), both atomic, and every temporary
// name starts with the pid of its owner so that Open removes only what a
// dead process left behind. All processes sharing a store must share one
// PID namespace. A recycled pid only delays the cleanup of a dead owner's
// leftovers until the new process exits.
//
// Commit does not fsync: a committed snapshot is a cache of a layer blob
// that can always be unpacked again.
package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/builderdev/builder/internal/atomicfile"
	"github.com/opencontainers/go-digest"
)

// ErrNotFound is returned (wrapped) when no committed snapshot has that chain ID.
var ErrNotFound = errors.New("snapshot not found")

// Mount is a mount as data, performed by whoever runs the process.
//
// An overlay Mount lists its lower dirs in one "lowerdir=a:b:c" option, top
// first, as mount(8) would take them. Its Mount method (Linux) passes the
// options to mount(2) when they fit in a page, and otherwise switches to the
// new mount API, adding the lowers one by one with fsconfig "lowerdir+".
// Consumers should mount with Mount.Mount rather than joining Options
// themselves.
type Mount struct {
	Type    string
	Source  string
	Target  string
	Options []string
}

// Store holds the snapshots under one directory (<state>/snapshots).
type Store struct{ root string }

// Names of the store's own dirs; ids never take these names.
const (
	byChainDir = "by-chain"
	activeDir  = "active"
	tmpDir     = "tmp"
)

// Files of a committed snapshot dir.
const (
	fsName     = "fs"
	parentName = "parent"
	chainName  = "chain"
	ownerName  = "owner" // name of the commit marker that placed this dir
)

// commitSuffix ends the name of a commit marker in tmp/: a file holding the
// id of a snapshot dir being put in place and linked from by-chain. The dir's
// owner file names the marker, so a marker never vouches for another
// process's dir even when ids are reused.
const commitSuffix = ".commit"

// maxChain bounds Lowers against a corrupted store whose parents loop.
const maxChain = 4096

// Open creates root when missing and removes leftover active/tmp dirs.
func Open(ctx context.Context, root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open snapshots %s: %w", root, err)
	}
	// Paths end up in overlay options, where these bytes are separators.
	if strings.ContainsAny(abs, ",:\\=") {
		return nil, fmt.Errorf("open snapshots %s: path must not contain any of , : \\ =", abs)
	}
	s := &Store{root: abs}
	for _, d := range []string{abs, s.path(byChainDir), s.path(activeDir), s.path(tmpDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open snapshots: %w", err)
		}
	}
	if err := s.cleanup(ctx); err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	if err := s.checkFormat(); err != nil {
		return nil, fmt.Errorf("open snapshots: %w", err)
	}
	return s, nil
}

// format names how snapshot dirs are unpacked; dirs of another format are
// dropped, to be unpacked again from their blobs. 2: parent dirs a layer
// does not list take their metadata from the layers below, times never
// come from the clock.
const (
	formatFile = "format"
	format     = "2"
)

// checkFormat unlinks every snapshot when the store's format is another:
// the dirs become orphans (RemoveOrphans, run by prune, deletes them) and
// the next build unpacks what it needs again.
func (s *Store) checkFormat() error {
	data, err := os.ReadFile(s.path(formatFile))
	if err == nil && strings.TrimSpace(string(data)) == format {
		return nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// Move the links aside in one rename (a process opening the store at
	// the same time may move the new, empty dir instead: harmless), then
	// drop them.
	old, err := os.MkdirTemp(s.path(tmpDir), ownerPrefix()+"by-chain-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(old)
	if err := os.Rename(s.path(byChainDir), filepath.Join(old, byChainDir)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(s.path(byChainDir), 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// The temp file is named by our pid, so cleanup removes it if we die.
	return atomicfile.WriteFile(s.path(formatFile), []byte(format+"\n"), 0o600,
		atomicfile.Options{TempDir: s.path(tmpDir), TempPattern: ownerPrefix() + "format-*"})
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

// Info describes a committed snapshot.
type Info struct {
	ID     string        // short id (dir name)
	Chain  digest.Digest // chain ID
	Parent digest.Digest // parent chain ID, "" for a base layer
	Dir    string        // the layer's files (overlay lower format)
}

// Stat returns the committed snapshot of chainID or ErrNotFound.
func (s *Store) Stat(ctx context.Context, chainID digest.Digest) (Info, error) {
	if err := chainID.Validate(); err != nil {
		return Info{}, fmt.Errorf("stat snapshot %q: %w", chainID, err)
	}
	target, err := os.Readlink(s.path(byChainDir, chainID.Encoded()))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("stat snapshot %s: %w", chainID, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat snapshot %s: %w", chainID, err)
	}
	id, ok := strings.CutPrefix(target, "../")
	if !ok || !validID(id) {
		return Info{}, fmt.Errorf("stat snapshot %s: bad link %q", chainID, target)
	}
	parent, err := os.ReadFile(s.path(id, parentName))
	if err != nil {
		return Info{}, fmt.Errorf("stat snapshot %s: %w", chainID, err)
	}
	info := Info{ID: id, Chain: chainID, Parent: digest.Digest(strings.TrimSpace(string(parent))), Dir: s.path(id, fsName)}
	if info.Parent != "" {
		if err := info.Parent.Validate(); err != nil {
			return Info{}, fmt.Errorf("stat snapshot %s: parent: %w", chainID, err)
		}
	}
	return info, nil
}

// Active is a prepared, uncommitted snapshot.
type Active struct {
	Upper  string   // new files go here
	Work   string   // overlay workdir
	Lowers []string // committed parent dirs, top first
	Parent digest.Digest
}

// Mounts returns the overlay mount of a's rootfs at target (a bind of Upper
// when there are no lowers).
//
// Overlay needs at least one lower dir; with none, the upper dir itself is
// the whole rootfs, so a recursive read-write bind of it has the same effect
// and its content still is exactly the step's changes.
func (a *Active) Mounts(target string) []Mount {
	if len(a.Lowers) == 0 {
		return []Mount{{Type: "bind", Source: a.Upper, Target: target, Options: []string{"rbind", "rw"}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Target: target, Options: overlayOptions(
		"lowerdir="+strings.Join(a.Lowers, ":"),
		"upperdir="+a.Upper,
		"workdir="+a.Work,
	)}}
}

// overlayOptions are dirs plus the options every overlay of the store
// gets. They keep an upper dir a faithful changeset: no index, no
// redirects (renaming a lower dir fails with EXDEV, so tools copy it and
// delete the original), no metadata-only copy-ups. In a user namespace
// overlayfs can only keep its whiteouts and opaque marks as user.overlay.*
// xattrs (userxattr), which layer reads and writes as well as trusted.*.
func overlayOptions(dirs ...string) []string {
	if InUserNS() {
		// redirect_dir=off would still follow redirects, which userxattr
		// refuses; nofollow neither makes nor follows them.
		return append(dirs, "index=off", "redirect_dir=nofollow", "metacopy=off", "userxattr")
	}
	return append(dirs, "index=off", "redirect_dir=off", "metacopy=off")
}

// Prepare makes an active snapshot over the committed chain parent ("" = none).
func (s *Store) Prepare(ctx context.Context, parent digest.Digest) (*Active, error) {
	var lowers []string
	if parent != "" {
		var err error
		if lowers, err = s.Lowers(ctx, parent); err != nil {
			return nil, fmt.Errorf("prepare snapshot: %w", err)
		}
	}
	dir, err := os.MkdirTemp(s.path(activeDir), ownerPrefix())
	if err != nil {
		return nil, fmt.Errorf("prepare snapshot: %w", err)
	}
	a := &Active{Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Lowers: lowers, Parent: parent}
	for _, d := range []string{a.Upper, a.Work} {
		// The upper dir's mode becomes the mode of the rootfs' "/":
		// chmod, as the umask may have narrowed it.
		err := os.Mkdir(d, 0o755)
		if err == nil {
			err = os.Chmod(d, 0o755)
		}
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, fmt.Errorf("prepare snapshot: %w", err)
		}
	}
	return a, nil
}

// Commit names a's upper dir by chainID. If chainID already exists (a
// concurrent build), a is removed and the existing one kept.
//
// Steps: write parent and chain files into a temp dir, move the upper dir
// in as fs, rename the temp dir to a fresh id, then symlink by-chain to it.
// symlink(2) fails when the name exists, so of two processes committing the
// same chain ID exactly one wins, and the loser drops its copy. A commit
// marker in tmp/ lets Open remove an id dir whose owner died before linking.
// On error a may be left: Remove it (Remove of a gone snapshot is a no-op).
func (s *Store) Commit(ctx context.Context, a *Active, chainID digest.Digest) (Info, error) {
	if err := chainID.Validate(); err != nil {
		return Info{}, fmt.Errorf("commit snapshot %q: %w", chainID, err)
	}
	dir, err := s.activeDir(a)
	if err != nil {
		return Info{}, fmt.Errorf("commit snapshot %s: %w", chainID, err)
	}
	if info, err := s.Stat(ctx, chainID); err == nil {
		if err := s.Remove(a); err != nil {
			return Info{}, fmt.Errorf("commit snapshot %s: %w", chainID, err)
		}
		return info, nil
	}
	info, err := s.commit(ctx, a, dir, chainID)
	if err != nil {
		return Info{}, fmt.Errorf("commit snapshot %s: %w", chainID, err)
	}
	return info, nil
}

func (s *Store) commit(ctx context.Context, a *Active, dir string, chainID digest.Digest) (Info, error) {
	tmp, err := os.MkdirTemp(s.path(tmpDir), ownerPrefix())
	if err != nil {
		return Info{}, err
	}
	defer os.RemoveAll(tmp) // no-op once renamed into place
	if err := os.WriteFile(filepath.Join(tmp, parentName), []byte(a.Parent), 0o600); err != nil {
		return Info{}, err
	}
	if err := os.WriteFile(filepath.Join(tmp, chainName), []byte(chainID), 0o600); err != nil {
		return Info{}, err
	}
	marker := tmp + commitSuffix
	if err := os.WriteFile(filepath.Join(tmp, ownerName), []byte(filepath.Base(marker)), 0o600); err != nil {
		return Info{}, err
	}
	if err := os.Rename(a.Upper, filepath.Join(tmp, fsName)); err != nil {
		return Info{}, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return Info{}, err
	}
	id, err := s.place(tmp, marker)
	if err != nil {
		return Info{}, err
	}
	link := s.path(byChainDir, chainID.Encoded())
	if err := os.Symlink("../"+id, link); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return Info{}, err
		}
		// Lost the race: drop our copy, keep theirs.
		err := s.discard(id)
		_ = os.Remove(marker)
		if err != nil {
			return Info{}, err
		}
		return s.Stat(ctx, chainID)
	}
	_ = os.Remove(marker)
	return Info{ID: id, Chain: chainID, Parent: a.Parent, Dir: s.path(id, fsName)}, nil
}

// place renames the dir tmp to a fresh id, writing the id to marker first.
// rename(2) fails on an existing non-empty dir, and committed dirs are never
// empty, so a taken id is simply retried.
func (s *Store) place(tmp, marker string) (string, error) {
	for range 16 {
		id := newID()
		if err := os.WriteFile(marker, []byte(id), 0o600); err != nil {
			return "", err
		}
		err := os.Rename(tmp, s.path(id))
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, fs.ErrExist) { // ErrExist also matches ENOTEMPTY
			_ = os.Remove(marker)
			return "", err
		}
	}
	_ = os.Remove(marker)
	return "", errors.New("allocate snapshot id: too many collisions")
}

// discard removes the committed dir id, first moving it into tmp/ under our
// pid so that a crash halfway leaves only tmp/ garbage.
func (s *Store) discard(id string) error {
	tmp := filepath.Join(s.path(tmpDir), ownerPrefix()+"gc-"+newID()+"-"+id)
	if err := os.Rename(s.path(id), tmp); err != nil {
		return err
	}
	return os.RemoveAll(tmp)
}

// Remove deletes an active snapshot.
func (s *Store) Remove(a *Active) error {
	dir, err := s.activeDir(a)
	if err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove snapshot: %w", err)
	}
	return nil
}

// activeDir returns the active dir holding a.Upper, refusing any path that
// is not one of this store's active dirs.
func (s *Store) activeDir(a *Active) (string, error) {
	if a == nil || filepath.Base(a.Upper) != "upper" {
		return "", errors.New("not an active snapshot")
	}
	dir := filepath.Dir(a.Upper)
	if filepath.Dir(dir) != s.path(activeDir) {
		return "", fmt.Errorf("%s is not an active snapshot of %s", a.Upper, s.root)
	}
	return dir, nil
}

// Lowers returns the dirs of chainID and its ancestors, top first, down to
// the first whose root is opaque: such a layer (a ".wh..wh..opq" at its
// root) hides every layer below, and overlay ignores the opaque mark on a
// lower dir's root, so the hidden layers are left out of the stack.
func (s *Store) Lowers(ctx context.Context, chainID digest.Digest) ([]string, error) {
	var dirs []string
	for id := chainID; id != ""; {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("list lowers of %s: %w", chainID, err)
		}
		if len(dirs) >= maxChain {
			return nil, fmt.Errorf("list lowers of %s: chain longer than %d", chainID, maxChain)
		}
		info, err := s.Stat(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("list lowers of %s: %w", chainID, err)
		}
		dirs = append(dirs, info.Dir)
		if opaque, err := isOpaque(info.Dir); err != nil {
			return nil, fmt.Errorf("list lowers of %s: %w", chainID, err)
		} else if opaque {
			break
		}
		id = info.Parent
	}
	return dirs, nil
}

// idAlphabet is lowercase base32; ids are idLen characters of it.
const (
	idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"
	idLen      = 6
)

func newID() string {
	for {
		b := make([]byte, idLen)
		for i := range b {
			b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
		}
		if id := string(b); validID(id) {
			return id
		}
	}
}

// validID reports whether id is a snapshot id (and not a store dir name).
func validID(id string) bool {
	if len(id) != idLen || id == activeDir || id == tmpDir || id == byChainDir || id == formatFile {
		return false
	}
	for i := range len(id) {
		if !strings.ContainsRune(idAlphabet, rune(id[i])) {
			return false
		}
	}
	return true
}

// ownerPrefix starts every temporary name this process makes.
func ownerPrefix() string { return strconv.Itoa(os.Getpid()) + "-" }

// ownerPID parses the pid a temporary name starts with.
func ownerPID(name string) (int, bool) {
	p, _, ok := strings.Cut(name, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}
