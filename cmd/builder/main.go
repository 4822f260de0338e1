// Command builder builds OCI images from Dockerfiles without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/builderdev/builder/client"
	"github.com/builderdev/builder/snapshot/sandbox"
	"github.com/spf13/cobra"
)

// Exit codes scripts can rely on.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2

	exitInterrupted = 130
)

func main() {
	if sandbox.IsInit() {
		sandbox.Main()
	}
	tuneStartHeap()
	// Run by a user who is not root: a build first tries the cache alone,
	// in this process (fromcache.go); else run again as root of a user
	// namespace mapped from the user's subordinate ids.
	if sandbox.WillReexec() && fromCacheCandidate(os.Args[1:]) {
		if code, ok := fromCache(os.Args[1:]); ok {
			os.Exit(code)
		}
	}
	if code, done := sandbox.EnterUserNS(); done {
		os.Exit(code)
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globalFlags{}
	defer g.stopSignals()
	defer stopCPUProfile() // started by the hidden --cpuprofile flag
	root := newRootCmd(g)
	g.defineFlags(root, args)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	ctx := g.signals() // interrupted: ctx.Err() != nil
	for _, b := range g.opened {
		if cerr := b.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		return exitOK
	}
	var ce containerExit // builder run: the container's status, signals or not
	if errors.As(err, &ce) {
		if ce.msg != "" {
			fmt.Fprintln(os.Stderr, ce.msg)
		}
		return ce.code
	}
	var ee exitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "error:", ee.err)
		}
		return ee.code
	}
	// Exit codes: 2 = the command line is wrong (unknown command or flag,
	// malformed flag value, missing context or Dockerfile, unknown
	// --target), found before any work; 1 = the build or command failed
	// (anything wrong inside the Dockerfile included); 130 = interrupted.
	msg := err.Error()
	var ue usageError
	usage := errors.As(err, &ue) || errors.Is(err, client.ErrUsage) ||
		strings.HasPrefix(msg, "unknown command ") // cobra has no typed error for it
	if usage {
		msg = strings.TrimPrefix(msg, client.ErrUsage.Error()+": ")
	}
	fmt.Fprintln(os.Stderr, "error:", msg)
	var ex excerptError
	if errors.As(err, &ex) && ctx.Err() == nil {
		writeExcerpt(os.Stderr, ex.err, ex.dockerfile)
	}
	switch {
	case ctx.Err() != nil:
		return exitInterrupted
	case usage:
		return exitUsage
	}
	return exitFail
}

// usageError marks bad command-line use (exit 2).
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

type globalFlags struct {
	root       string
	debug      bool
	cpuprofile string
	opened     []*client.Client // by openClient; closed by run
	lazy       []lazyFlagSet    // flags defined only when their command runs

	sigCtx  context.Context // ends at SIGINT or SIGTERM; set when a command runs
	sigStop context.CancelFunc
}

// watchSignals gives cmd, about to run, a context that ends at SIGINT or
// SIGTERM. It waits for a command to run: help and usage errors never
// start the signal machinery (a goroutine, and a thread to run it).
func (g *globalFlags) watchSignals(cmd *cobra.Command) {
	g.sigCtx, g.sigStop = signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	cmd.SetContext(g.sigCtx)
}

// signals is the context watchSignals made, or one that never ends when no
// command ran.
func (g *globalFlags) signals() context.Context {
	if g.sigCtx == nil {
		return context.Background()
	}
	return g.sigCtx
}

func (g *globalFlags) stopSignals() {
	if g.sigStop != nil {
		g.sigStop()
	}
}

// lazyFlagSet is a command's deferred flag definitions.
type lazyFlagSet struct {
	cmd    *cobra.Command
	define func()
}

// lazyFlags defers define, the flag definitions of cmd, until a run needs
// them (defineFlags): defining the thirty flags each of build and run was
// a twentieth of every other command's start, `builder --help` included.
func (g *globalFlags) lazyFlags(cmd *cobra.Command, define func()) {
	g.lazy = append(g.lazy, lazyFlagSet{cmd, define})
}

// defineFlags defines the deferred flags args need: those of the command
// they run, none for the root's own help, and all of them when cobra will
// look further (help, completion, an unknown command: Find fails).
func (g *globalFlags) defineFlags(root *cobra.Command, args []string) {
	target, _, err := root.Find(args)
	for _, l := range g.lazy {
		if err != nil || l.cmd == target {
			l.define()
		}
	}
	g.lazy = nil
}

func newRootCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:           "builder",
		Short:         "Build OCI images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	cmd.PersistentFlags().StringVar(&g.root, "root", defaultRoot(), "state directory (image store and cache)")
	cmd.PersistentFlags().BoolVar(&g.debug, "debug", false, "print debug logs")
	cmd.PersistentFlags().StringVar(&g.cpuprofile, "cpuprofile", "", "write a CPU profile to this file")
	_ = cmd.PersistentFlags().MarkHidden("cpuprofile")
	cmd.PersistentPreRunE = func(c *cobra.Command, _ []string) error {
		g.watchSignals(c)
		if g.cpuprofile == "" {
			return nil
		}
		return startCPUProfile(g.cpuprofile)
	}
	cmd.AddCommand(newBuildCmd(g), newImagesCmd(g), newInspectCmd(g), newTagCmd(g), newRmiCmd(g),
		newSaveCmd(g), newLoadCmd(g), newPruneCmd(g), newDfCmd(g), newCheckCmd(g),
		newPullCmd(g), newPushCmd(g), newLoginCmd(), newLogoutCmd(), // registry.go
		newDiffCmd(g),                 // diff.go
		newRunCmd(g), newVolumeCmd(g), // run.go, volume.go
		newPlatformsCmd(), // platforms.go
		newHistoryCmd(g))  // history.go
	return cmd
}

// defaultRoot is /var/lib/builder for root, else $XDG_DATA_HOME/builder
// (also once re-executed as root of the user's own namespace).
func defaultRoot() string {
	if os.Geteuid() == 0 && !sandbox.Reexecuted() {
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
