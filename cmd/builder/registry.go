package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// registryFlags are the TLS flags of every command that talks to a registry.
type registryFlags struct {
	tlsVerify bool
	insecure  []string
}

func (r *registryFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&r.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (localhost may always use HTTP)")
	stringsVarP(fl, &r.insecure, "insecure-registry", "", "registry HOST[:PORT] allowed over HTTP or unverified HTTPS (repeatable)")
}

// options builds the registry options; blob progress goes to w.
func (r *registryFlags) options(w io.Writer) client.RegistryOptions {
	opts := client.RegistryOptions{Insecure: r.insecure, Progress: blobPrinter(w)}
	if !r.tlsVerify {
		v := false
		opts.TLSVerify = &v
	}
	return opts
}

// blobPrinter prints one line per finished blob.
func blobPrinter(w io.Writer) func(client.BlobEvent) {
	return func(e client.BlobEvent) {
		status := string(e.Status)
		switch {
		case e.Status == client.BlobSkipped && e.Op == "push":
			status = "skipped (already in the registry)"
		case e.Status == client.BlobSkipped:
			status = "skipped (already in the store)"
		case e.Status == client.BlobMounted:
			status = "mounted from " + e.From
		}
		fmt.Fprintf(w, "%s %s: blob %s %s %s\n", e.Op, e.Ref, short(e.Digest.Encoded()), humanSize(e.Size), status)
	}
}

func newPullCmd(g *globalFlags) *cobra.Command {
	var rf registryFlags
	var platform string
	cmd := &cobra.Command{
		Use:   "pull [flags] REF",
		Short: "Pull an image from a registry into the store",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := rf.options(cmd.ErrOrStderr())
			if platform != "" {
				p, err := client.ParsePlatform(platform)
				if err != nil {
					return usagef("--platform: %v", err)
				}
				opts.Platform = p
			}
			b, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			img, err := b.Pull(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			name := img.Name
			if name == "" {
				name = args[0]
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s (image %s, manifest %s)\n", name, img.ID, img.Manifest)
			return nil
		},
	}
	cmd.Flags().StringVar(&platform, "platform", "", "pick this platform (os/arch[/variant]) from a multi-platform image")
	rf.register(cmd)
	return cmd
}

func newPushCmd(g *globalFlags) *cobra.Command {
	var rf registryFlags
	cmd := &cobra.Command{
		Use:   "push [flags] IMAGE [REF]",
		Short: "Push an image of the store to a registry (to REF, default IMAGE)",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("expected IMAGE [REF], got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openClient(cmd, g)
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			if err := b.Push(cmd.Context(), args[0], ref, rf.options(cmd.ErrOrStderr())); err != nil {
				return err
			}
			if ref == "" {
				ref = args[0]
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pushed %s\n", ref)
			return nil
		},
	}
	rf.register(cmd)
	return cmd
}

func newLoginCmd() *cobra.Command {
	var rf registryFlags
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [flags] REGISTRY",
		Short: "Check and save registry credentials (in $DOCKER_CONFIG/config.json or ~/.docker/config.json)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if user == "" {
				return usagef("login: --username (-u) is required")
			}
			switch {
			case passwordStdin && password != "":
				return usagef("login: --password and --password-stdin are mutually exclusive")
			case passwordStdin:
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				password = pw
			case password != "":
				fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: using --password on the command line is insecure; use --password-stdin")
			default:
				return usagef("login: give --password or --password-stdin")
			}
			if err := client.Login(cmd.Context(), args[0], user, password, rf.options(io.Discard)); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "user name")
	fl.StringVarP(&password, "password", "p", "", "password")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	rf.register(cmd)
	return cmd
}

// readPassword reads the first line of r, without its line ending.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", usagef("login: empty password on stdin")
	}
	return pw, nil
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout REGISTRY",
		Short: "Remove saved registry credentials",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := client.Logout(cmd.Context(), args[0], client.RegistryOptions{})
			if errors.Is(err, client.ErrNotFound) {
				fmt.Fprintf(cmd.OutOrStdout(), "Not logged in to %s\n", args[0])
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removed login credentials for %s\n", args[0])
			return nil
		},
	}
}

// buildRegistryFlags are the registry flags of build.
type buildRegistryFlags struct {
	registryFlags
	push     bool
	pull     bool
	platform string
}

func (f *buildRegistryFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVar(&f.push, "push", false, "push the image to the registry of every -t tag")
	fl.BoolVar(&f.pull, "pull", false, "check base images against their registry (fetching only missing blobs)")
	fl.StringVar(&f.platform, "platform", "", "target platform os/arch[/variant] (default: the host's); a comma-separated list builds a multi-platform image index")
	f.registryFlags.register(cmd)
}

// apply sets the registry options of a build; blob progress goes to w.
func (f *buildRegistryFlags) apply(opts *client.BuildOptions, w io.Writer) error {
	opts.Push, opts.Pull = f.push, f.pull
	if f.push && len(opts.Tags) == 0 {
		return usagef("--push needs at least one -t tag naming the registry")
	}
	if f.platform != "" {
		// os/arch[,os/arch...]: more than one makes an image index.
		for _, s := range strings.Split(f.platform, ",") {
			p, err := client.ParsePlatform(s)
			if err != nil {
				return usagef("--platform: %v", err)
			}
			opts.Platforms = append(opts.Platforms, p)
		}
		opts.Platform = opts.Platforms[0]
	}
	opts.Registry = f.options(w)
	return nil
}

// progressWriter is where a build prints blob progress.
func progressWriter(cmd *cobra.Command, f *buildFlags, prog progress) io.Writer {
	if f.quiet || f.progress == "quiet" {
		return io.Discard
	}
	if w, ok := prog.(io.Writer); ok {
		return w // the tty view: lines above the live area
	}
	return cmd.ErrOrStderr()
}
