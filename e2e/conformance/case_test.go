//go:build linux

package conformance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A case file (testdata/cases/NAME.txt) is a txtar-like text: a header of
// directives, then files, each introduced by a line "-- path --" and running
// to the next such line. The header lines are:
//
//	# comment
//	arg K=V              a build argument
//	target STAGE         the stage to build
//	mkdir DIR            an (empty) directory
//	chmod MODE PATH      octal mode, applied after the files are written
//	chown UID:GID PATH   owner (numeric), not following a symlink
//	symlink PATH TARGET  a symbolic link
//	hardlink PATH OLD    a hard link to an existing file
//	fifo PATH            a named pipe
//	xattr PATH NAME VAL  an extended attribute (user.* in practice)
//	tar OUT DIR [gz] [dot]  a tar (gzipped with gz; names starting with "./"
//	                     with dot) of DIR's content, made after the other
//	                     directives, then DIR is removed
//
// Header directives run in order after the files are written (tar last). In
// the Dockerfile the text @BASE@ stands for the busybox base image (its name
// differs between the recorder's registry and the test's store).
type testCase struct {
	name    string
	args    []string // K=V
	target  string
	files   []caseFile
	actions [][]string
}

type caseFile struct {
	path string
	data []byte
}

// basePlaceholder is replaced by the base image reference.
const basePlaceholder = "@BASE@"

// contextTime is the mtime of the entries of the tars a case makes. Context
// files keep their real (fresh) mtimes: BuildKit's context sync takes a file
// with the same name, size and mtime as one it saw before for unchanged, so
// fixed mtimes would leak one case's files into another. Both builders clamp
// every mtime to SOURCE_DATE_EPOCH=0.
var contextTime = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

func parseCase(name string, data []byte) (*testCase, error) {
	c := &testCase{name: name}
	lines := strings.SplitAfter(string(data), "\n")
	var cur *caseFile
	for i, line := range lines {
		if p, ok := fileMarker(line); ok {
			c.files = append(c.files, caseFile{path: p})
			cur = &c.files[len(c.files)-1]
			continue
		}
		if cur != nil {
			cur.data = append(cur.data, line...)
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		bad := func() error { return fmt.Errorf("%s:%d: bad directive %q", name, i+1, strings.TrimSpace(line)) }
		switch f[0] {
		case "arg":
			if len(f) != 2 {
				return nil, bad()
			}
			c.args = append(c.args, f[1])
		case "target":
			if len(f) != 2 {
				return nil, bad()
			}
			c.target = f[1]
		case "mkdir", "fifo":
			if len(f) != 2 {
				return nil, bad()
			}
			c.actions = append(c.actions, f)
		case "chmod", "chown", "symlink", "hardlink":
			if len(f) != 3 {
				return nil, bad()
			}
			c.actions = append(c.actions, f)
		case "xattr":
			if len(f) != 4 {
				return nil, bad()
			}
			c.actions = append(c.actions, f)
		case "tar":
			for _, opt := range f[min(3, len(f)):] {
				if opt != "gz" && opt != "dot" {
					return nil, bad()
				}
			}
			if len(f) < 3 {
				return nil, bad()
			}
			c.actions = append(c.actions, f)
		default:
			return nil, bad()
		}
	}
	if !c.hasFile("Dockerfile") {
		return nil, fmt.Errorf("%s: no Dockerfile", name)
	}
	return c, nil
}

func fileMarker(line string) (string, bool) {
	line = strings.TrimRight(line, "\n")
	if !strings.HasPrefix(line, "-- ") || !strings.HasSuffix(line, " --") || len(line) < 7 {
		return "", false
	}
	return strings.TrimSpace(line[3 : len(line)-3]), true
}

func (c *testCase) hasFile(p string) bool {
	for _, f := range c.files {
		if f.path == p {
			return true
		}
	}
	return false
}

// materialize writes the build context of c into dir with base as the base
// image, every file 0644 and dir 0755 unless chmod says otherwise (a umask
// of 022 leaves those modes alone; the umask is process-wide, so it is not
// changed while other cases build).
func (c *testCase) materialize(dir, base string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range c.files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		data := f.data
		if f.path == "Dockerfile" {
			data = bytes.ReplaceAll(data, []byte(basePlaceholder), []byte(base))
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	var tars [][]string
	for _, a := range c.actions {
		p := filepath.Join(dir, filepath.FromSlash(a[1]))
		var err error
		switch a[0] {
		case "mkdir":
			err = os.MkdirAll(p, 0o755)
		case "fifo":
			err = syscall.Mkfifo(p, 0o644)
		case "chmod":
			var m uint64
			if m, err = strconv.ParseUint(a[1], 8, 32); err == nil {
				p = filepath.Join(dir, filepath.FromSlash(a[2]))
				err = os.Chmod(p, fs.FileMode(m&0o777)|modeExtra(m))
			}
		case "chown":
			var uid, gid int
			if _, err = fmt.Sscanf(a[1], "%d:%d", &uid, &gid); err == nil {
				err = os.Lchown(filepath.Join(dir, filepath.FromSlash(a[2])), uid, gid)
			}
		case "symlink":
			if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
				err = os.Symlink(a[2], p)
			}
		case "hardlink":
			err = os.Link(filepath.Join(dir, filepath.FromSlash(a[2])), p)
		case "xattr":
			err = unix.Lsetxattr(p, a[2], []byte(a[3]), 0)
		case "tar":
			tars = append(tars, a)
		}
		if err != nil {
			return fmt.Errorf("%s: %s: %w", c.name, strings.Join(a, " "), err)
		}
	}
	for _, a := range tars {
		gz, dot := slices.Contains(a[3:], "gz"), slices.Contains(a[3:], "dot")
		if err := writeTar(filepath.Join(dir, a[1]), filepath.Join(dir, a[2]), gz, dot); err != nil {
			return fmt.Errorf("%s: %s: %w", c.name, strings.Join(a, " "), err)
		}
		if err := os.RemoveAll(filepath.Join(dir, a[2])); err != nil {
			return err
		}
	}
	return nil
}

func modeExtra(m uint64) fs.FileMode {
	var x fs.FileMode
	if m&0o4000 != 0 {
		x |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		x |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		x |= fs.ModeSticky
	}
	return x
}

// writeTar writes a deterministic tar of src's content (names relative to src).
func writeTar(out, src string, gz, dot bool) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if dot {
		h := &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: contextTime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
	}
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if dot {
			h.Name = "./" + h.Name
		}
		if info.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		h.ModTime, h.AccessTime, h.ChangeTime = contextTime, time.Time{}, time.Time{}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(data)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	data := buf.Bytes()
	if gz {
		var zb bytes.Buffer
		zw := gzip.NewWriter(&zb)
		zw.ModTime = contextTime
		if _, err := zw.Write(data); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		data = zb.Bytes()
	}
	return os.WriteFile(out, data, 0o644)
}

// loadCases reads every case file under dir, sorted by name.
func loadCases(dir string) ([]*testCase, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*testCase
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		c, err := parseCase(strings.TrimSuffix(filepath.Base(n), ".txt"), data)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
