package testutil

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
)

// Users and groups of the busybox image. www (1000:1000) is the unprivileged
// user the tests switch to with USER and --chown.
const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n" +
		"bin:x:2:2:bin:/bin:/bin/false\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" +
		"www:x:1000:1000:www:/home/www:/bin/sh\n"
	etcGroup = "root:x:0:\n" +
		"daemon:x:1:\n" +
		"bin:x:2:\n" +
		"wheel:x:10:root,www\n" +
		"nogroup:x:65534:\n" +
		"www:x:1000:\n"
)

// layerEntry is one tar entry of the rootfs layer. The body of a regular file
// is either data or the host file at path.
type layerEntry struct {
	hdr  tar.Header
	data []byte
	path string
}

// builtLayer is a compressed layer blob held in memory (busybox is ~2 MB).
type builtLayer struct {
	blob   []byte
	digest digest.Digest // of blob
	diffID digest.Digest // of the uncompressed tar
}

// busyboxApplets runs `busybox --list` and returns the sorted, unique applet
// names, without "busybox" itself.
func busyboxApplets(busybox string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(busybox, "--list")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("list applets of %s: %w: %s", busybox, err, strings.TrimSpace(stderr.String()))
	}
	seen := make(map[string]bool)
	var applets []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if name == "" || name == "busybox" || seen[name] {
			continue
		}
		if strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
			return nil, fmt.Errorf("list applets of %s: bad applet name %q", busybox, name)
		}
		seen[name] = true
		applets = append(applets, name)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("list applets of %s: no applets", busybox)
	}
	sort.Strings(applets)
	return applets, nil
}

// busyboxEntries returns the entries of the rootfs layer, sorted by name.
func busyboxEntries(busybox string, applets []string) ([]layerEntry, error) {
	fi, err := os.Stat(busybox)
	if err != nil {
		return nil, fmt.Errorf("stat busybox: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("stat busybox: %s is not a regular file", busybox)
	}
	dir := func(name string, mode int64, id int) layerEntry {
		return layerEntry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: id, Gid: id}}
	}
	entries := []layerEntry{
		dir("bin", 0o755, 0),
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: fi.Size()}, path: busybox},
		// Mount points for the sandbox, so a RUN does not have to create them.
		dir("dev", 0o755, 0),
		dir("etc", 0o755, 0),
		regular("etc/group", []byte(etcGroup)),
		regular("etc/passwd", []byte(etcPasswd)),
		dir("home", 0o755, 0),
		dir("home/www", 0o755, 1000),
		dir("proc", 0o555, 0),
		dir("root", 0o700, 0),
		dir("sbin", 0o755, 0),
		dir("sys", 0o555, 0),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/bin", 0o755, 0),
		dir("var", 0o755, 0),
	}
	for _, a := range applets {
		entries = append(entries, layerEntry{hdr: tar.Header{
			Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777,
		}})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	for i := 1; i < len(entries); i++ {
		if entries[i].hdr.Name == entries[i-1].hdr.Name {
			return nil, fmt.Errorf("build busybox layer: duplicate entry %s", entries[i].hdr.Name)
		}
	}
	return entries, nil
}

// buildLayer writes entries as a deterministic PAX tar, gzips it with a fixed
// header and returns the blob with its digest and diffID.
func buildLayer(entries []layerEntry) (builtLayer, error) {
	var blob bytes.Buffer
	diffHash := sha256.New()
	zw, err := gzip.NewWriterLevel(&blob, gzip.DefaultCompression)
	if err != nil {
		return builtLayer{}, fmt.Errorf("create gzip writer: %w", err)
	}
	tw := tar.NewWriter(io.MultiWriter(diffHash, zw))
	for _, e := range entries {
		if err := writeEntry(tw, e); err != nil {
			return builtLayer{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return builtLayer{}, fmt.Errorf("close layer tar: %w", err)
	}
	if err := zw.Close(); err != nil {
		return builtLayer{}, fmt.Errorf("close layer gzip: %w", err)
	}
	return builtLayer{
		blob:   blob.Bytes(),
		digest: digest.FromBytes(blob.Bytes()),
		diffID: digest.NewDigestFromBytes(digest.SHA256, diffHash.Sum(nil)),
	}, nil
}

func writeEntry(tw *tar.Writer, e layerEntry) error {
	hdr := e.hdr
	hdr.Format = tar.FormatPAX
	hdr.ModTime = fixedTime()
	if err := tw.WriteHeader(&hdr); err != nil {
		return fmt.Errorf("write header %s: %w", hdr.Name, err)
	}
	switch {
	case e.path != "":
		f, err := os.Open(e.path)
		if err != nil {
			return fmt.Errorf("open %s: %w", e.path, err)
		}
		defer f.Close()
		if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
			return fmt.Errorf("copy %s: %w", e.path, err)
		}
	case e.data != nil:
		if _, err := tw.Write(e.data); err != nil {
			return fmt.Errorf("write %s: %w", hdr.Name, err)
		}
	}
	return nil
}
