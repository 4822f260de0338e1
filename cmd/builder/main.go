// Command builder builds OCI images from Dockerfiles without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/builderdev/builder/executor"
	"github.com/builderdev/builder/parser"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	if sandbox.IsInit() {
		sandbox.Main()
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	var ue usageError
	var pe *parser.Error
	switch {
	case errors.As(err, &ue), errors.Is(err, executor.ErrUsage):
		return exitUsage
	case errors.As(err, &pe):
		return exitFail
	case ctx.Err() != nil:
		return 130
	}
	return exitFail
}

// usageError marks bad command-line use (exit 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

type globalFlags struct {
	root  string
	debug bool
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	cmd := &cobra.Command{
		Use:           "builder",
		Short:         "Build OCI images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.PersistentFlags().StringVar(&g.root, "root", defaultRoot(), "state directory (image store and cache)")
	cmd.PersistentFlags().BoolVar(&g.debug, "debug", false, "print debug logs")
	cmd.AddCommand(newBuildCmd(g), newImagesCmd(g), newInspectCmd(g), newTagCmd(g), newRmiCmd(g),
		newSaveCmd(g), newLoadCmd(g), newPruneCmd(g), newDfCmd(g), newCheckCmd(g))
	return cmd
}

// defaultRoot is /var/lib/builder for root, else $XDG_DATA_HOME/builder.
func defaultRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/builder"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return x + "/builder"
	}
	home, _ := os.UserHomeDir()
	return home + "/.local/share/builder"
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("expected %d argument(s), got %d", n, len(args))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("expected at least %d argument(s), got %d", n, len(args))
		}
		return nil
	}
}
