package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/builderdev/builder/internal/testutil"
)

// debianSuite is the release of the apt workload's base.
const debianSuite = "bookworm"

// debianMaxAge: a cached debootstrap rootfs older than this is made again
// (the mirror moves on; apt-get update then has more to fetch).
const debianMaxAge = 7 * 24 * time.Hour

// pushBusybox makes the busybox base image (Debian's busybox-static) and
// pushes it to the registry at reg; it returns the image reference.
func pushBusybox(bin, root, tmp, reg string) (string, error) {
	archive := filepath.Join(tmp, "busybox.tar")
	if err := testutil.WriteBusyboxImage(archive, testutil.BusyboxOptions{Name: "busybox:latest"}); err != nil {
		return "", err
	}
	ref := reg + "/bench/busybox:latest"
	for _, args := range [][]string{{"load", "-i", archive}, {"tag", "busybox:latest", ref}, {"push", ref}} {
		if _, err := run("", bin, append([]string{"--root", root}, args...)...); err != nil {
			return "", err
		}
	}
	return ref, nil
}

// pushDebian makes the Debian base image from a debootstrap minbase rootfs
// (kept under cacheDir for debianMaxAge) and pushes it to reg.
func pushDebian(bin, root, tmp, cacheDir, reg string) (string, error) {
	rootfs, err := debianRootfs(cacheDir)
	if err != nil {
		return "", err
	}
	ctx := filepath.Join(tmp, "debian-ctx")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		return "", err
	}
	// The context holds a hard link to the cached tar (no copy of 200 MB),
	// or a copy when tmp is on another file system.
	if err := linkOrCopy(rootfs, filepath.Join(ctx, "rootfs.tar")); err != nil {
		return "", err
	}
	df := "FROM scratch\nADD rootfs.tar /\nENV LANG=C.UTF-8\nCMD [\"bash\"]\n"
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		return "", err
	}
	ref := reg + "/bench/debian:" + debianSuite
	if _, err := run("", bin, "--root", root, "build", "-q", "-t", ref, ctx); err != nil {
		return "", err
	}
	if _, err := run("", bin, "--root", root, "push", ref); err != nil {
		return "", err
	}
	return ref, nil
}

// debianRootfs returns the path of a tar of a Debian minbase rootfs made
// by debootstrap from the host's apt mirror, reusing one made recently.
func debianRootfs(cacheDir string) (string, error) {
	// debootstrap wants an absolute target, and tar runs with -C.
	cacheDir, err := filepath.Abs(cacheDir)
	if err != nil {
		return "", err
	}
	out := filepath.Join(cacheDir, "debian-"+debianSuite+"-minbase.tar")
	if info, err := os.Stat(out); err == nil && time.Since(info.ModTime()) < debianMaxAge {
		return out, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", errors.New("debootstrap is not installed (make deps installs it)")
	}
	mirror, err := aptMirror("/etc/apt")
	if err != nil {
		return "", err
	}
	// Under cacheDir, not tmp: a tmpfs /tmp may be nodev, which debootstrap
	// cannot work in.
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	target := filepath.Join(cacheDir, "debootstrap.partial")
	testutil.UnmountUnder(target) // a killed earlier run's
	if err := os.RemoveAll(target); err != nil {
		return "", err
	}
	defer func() {
		testutil.UnmountUnder(target) // debootstrap mounts proc and sys while it works
		os.RemoveAll(target)
	}()
	if _, err := run("", "debootstrap", "--variant=minbase", debianSuite, target, mirror); err != nil {
		return "", fmt.Errorf("debootstrap from %s: %w", mirror, err)
	}
	testutil.UnmountUnder(target)
	partial := out + ".partial"
	// /dev, /proc and /sys stay empty dirs, as in Docker's debian images.
	_, err = run("", "tar", "--numeric-owner", "--xattrs", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*",
		"-C", target, "-cf", partial, ".")
	if err != nil {
		os.Remove(partial)
		return "", err
	}
	return out, os.Rename(partial, out)
}

// linkOrCopy hard-links src to dst, copying when they are on different
// file systems.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// aptMirror reads the first Debian archive URI (not the security archive)
// from the apt sources under etc: deb822 .sources files and one-line
// sources.list entries. The mirror is never written into the repo.
func aptMirror(etc string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.sources"))
	lists, _ := filepath.Glob(filepath.Join(etc, "sources.list.d", "*.list"))
	files = append(append(files, filepath.Join(etc, "sources.list")), lists...)
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			continue
		}
		uri := mirrorIn(f, strings.HasSuffix(name, ".sources"))
		f.Close()
		if uri != "" {
			return uri, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror in the apt sources under %s", etc)
}

// mirrorIn returns the first deb archive URI of one sources file.
func mirrorIn(f *os.File, deb822 bool) string {
	sc := bufio.NewScanner(f)
	var uris, suites []string
	isDeb := false
	flush := func() string {
		defer func() { uris, suites, isDeb = nil, nil, false }()
		if !isDeb || len(uris) == 0 {
			return ""
		}
		for _, s := range suites {
			if strings.Contains(s, "security") {
				return ""
			}
		}
		return strings.TrimSuffix(uris[0], "/")
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") {
			continue
		}
		if !deb822 {
			// deb [options] URI suite components...
			f := strings.Fields(line)
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if strings.HasPrefix(f[0], "[") {
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) > 0 {
					f = f[1:]
				}
			}
			if len(f) >= 2 && strings.HasPrefix(f[0], "http") && !strings.Contains(f[1], "security") {
				return strings.TrimSuffix(f[0], "/")
			}
			continue
		}
		if line == "" {
			if uri := flush(); uri != "" {
				return uri
			}
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "types":
			isDeb = strings.Contains(" "+value+" ", " deb ")
		case "uris":
			for _, u := range strings.Fields(value) {
				if strings.HasPrefix(u, "http") {
					uris = append(uris, u)
				}
			}
		case "suites":
			suites = strings.Fields(value)
		}
	}
	if deb822 {
		return flush()
	}
	return ""
}
