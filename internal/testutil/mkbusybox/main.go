// Command mkbusybox writes the busybox base image used by tests and the demo
// as an OCI image archive:
//
//	go run ./internal/testutil/mkbusybox -o busybox.tar [-name busybox:latest] [-tag latest] [-busybox /bin/busybox] [-arch amd64]
//
// -arch names the architecture of -busybox (default the host's); each
// -index ARCH=PATH adds the image of another platform, and the archive then
// tags a multi-platform image index:
//
//	go run ./internal/testutil/mkbusybox -o bb.tar -index arm64=$(scripts/foreign-busybox.sh arm64)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/builderdev/builder/internal/testutil"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkbusybox:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkbusybox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "output OCI image archive (required)")
	var opts testutil.BusyboxOptions
	fs.StringVar(&opts.Name, "name", "busybox:latest", "image name (io.containerd.image.name annotation)")
	fs.StringVar(&opts.Tag, "tag", "latest", "tag (org.opencontainers.image.ref.name annotation)")
	fs.StringVar(&opts.Busybox, "busybox", "/bin/busybox", "static busybox binary to copy")
	fs.StringVar(&opts.Arch, "arch", runtime.GOARCH, "architecture of -busybox (GOARCH name)")
	fs.Func("index", "ARCH=PATH: add the image of another platform (repeatable; makes an image index)", func(v string) error {
		arch, path, ok := strings.Cut(v, "=")
		if !ok || arch == "" || path == "" {
			return errors.New("want ARCH=PATH")
		}
		opts.Others = append(opts.Others, testutil.BusyboxPlatform{Arch: arch, Busybox: path})
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("usage: mkbusybox -o FILE [-name NAME] [-tag TAG] [-busybox PATH] [-arch ARCH] [-index ARCH=PATH...]")
	}
	return testutil.WriteBusyboxImage(*out, opts)
}
