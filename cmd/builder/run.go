package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// Exit codes of builder run that are not the command's, as docker run's.
const (
	exitRunFailed   = 125 // builder run itself failed
	exitCannotRun   = 126 // the command cannot be invoked
	exitNotFound    = 127 // the command was not found
	exitKilled      = 128 + int(syscall.SIGKILL)
	defaultStopWait = 10 * time.Second
)

// containerExit ends builder with the container's exit status (or 125,
// 126, 127), printing msg first when set; unlike exitError it holds after
// a signal, which builder run passes on rather than obeys.
type containerExit struct {
	code int
	msg  string
}

func (e containerExit) Error() string { return e.msg }

type runFlags struct {
	env, envFiles             []string
	workdir, user, entrypoint string
	hostname, name, network   string
	commit                    string
	rm, readOnly, interactive bool
	tty                       bool
	volumes, tmpfs, mounts    []string
	memory, cpus              string
	pids                      int64
	stopTimeout               int
}

func newRunCmd(g *globalFlags) *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container of an image of the store",
		Long: `Run a command in a new container of an image of the store, in the foreground,
as docker run does, in the sandbox of RUN (namespaces, Docker's default
capabilities and seccomp profile, masked /proc paths, no_new_privs) over the
image's layers.

The command is the image's Entrypoint followed by COMMAND [ARG...], or by the
image's Cmd when none is given; --entrypoint replaces the Entrypoint and drops
the image's Cmd. The container's changes to its filesystem are always
discarded when it exits (--rm is the default and only mode): use volumes to
keep files, or --commit NAME to keep the filesystem as a new image. There are no detached containers, no restart policies and no port
publishing: --network host (the default) shares the host's network, --network
none gives a loopback only.

Signals: SIGINT (Ctrl-C), SIGTERM, SIGHUP and SIGQUIT sent to builder go to
the command, PID 1 of the container; when it has not exited --stop-timeout
seconds later, or at a second such signal, the whole container is killed.
Nothing is left behind: no mount, cgroup or process.

Exit status: the command's (128+N when killed by signal N); 125 when builder
run itself fails, 126 when the command cannot be invoked, 127 when it is not
found.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.run(cmd, g, args)
		},
	}
	g.lazyFlags(cmd, func() {
		fl := cmd.Flags()
		fl.SetInterspersed(false) // flags after IMAGE are the command's
		fl.Bool("help", false, "help for run")
		stringsVarP(fl, &f.env, "env", "e", "set an environment variable (KEY=VALUE, or KEY to pass builder's own)")
		stringsVarP(fl, &f.envFiles, "env-file", "", "read environment variables from a file (KEY=VALUE lines)")
		fl.StringVarP(&f.workdir, "workdir", "w", "", "working directory in the container (created when missing)")
		fl.StringVarP(&f.user, "user", "u", "", "user[:group] to run as, by name or id")
		fl.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint (\"\": none)")
		fl.StringVarP(&f.hostname, "hostname", "h", "", "container host name (default a random id)")
		fl.StringVar(&f.name, "name", "", "name the container; a second run of the same name fails while this one runs")
		fl.StringVar(&f.network, "network", "host", "network: host or none (no port publishing)")
		fl.BoolVar(&f.rm, "rm", true, "remove the container when it exits (always: builder keeps no containers)")
		fl.StringVar(&f.commit, "commit", "", "once the command exits 0, keep the container's filesystem as a new image of this name (docker commit)")
		fl.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem read-only")
		fl.BoolVarP(&f.interactive, "interactive", "i", false, "keep stdin attached")
		fl.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-terminal")
		stringsVarP(fl, &f.volumes, "volume", "v", "bind mount HOST:CTR[:ro] (HOST must exist), named volume NAME:CTR[:ro], or anonymous volume CTR")
		stringsVarP(fl, &f.tmpfs, "tmpfs", "", "mount a tmpfs: CTR[:OPTIONS] (size=64m,mode=1777,exec,...)")
		stringsVarP(fl, &f.mounts, "mount", "", "type=bind|volume|tmpfs,source=...,target=...[,readonly] as docker run")
		fl.StringVarP(&f.memory, "memory", "m", "", "memory limit: 512m, 2g (binary units; at least 6m)")
		fl.StringVar(&f.cpus, "cpus", "", "CPU limit: 1.5")
		fl.Int64Var(&f.pids, "pids-limit", 0, "process (and thread) limit; -1: none (default 64 per CPU, at least 1024)")
		fl.IntVar(&f.stopTimeout, "stop-timeout", int(defaultStopWait/time.Second), "seconds to wait after a forwarded SIGINT or SIGTERM before killing the container")
	})
	return cmd
}

func (f *runFlags) run(cmd *cobra.Command, g *globalFlags, args []string) error {
	opts, err := f.options(cmd, args)
	if err != nil {
		return containerExit{exitRunFailed, "error: " + err.Error()}
	}
	if f.tty && f.interactive && !isTerminal(os.Stdin) {
		return containerExit{exitRunFailed, "error: the input device is not a TTY (drop -t, or run builder in a terminal)"}
	}
	if f.interactive {
		opts.Stdin = os.Stdin
	}
	opts.Stdout, opts.Stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.tty {
		opts.TTY = true
		for _, f := range []*os.File{os.Stdout, os.Stdin} {
			if cols, rows, err := termSize(f.Fd()); err == nil {
				opts.TTYSize = [2]uint16{uint16(rows), uint16(cols)}
				break
			}
		}
		if f.interactive {
			restore, err := makeRaw(os.Stdin)
			if err != nil {
				return containerExit{exitRunFailed, "error: terminal raw mode: " + err.Error()}
			}
			defer restore()
		}
	}
	// builder's own ctx ends at the first signal; the container's ends
	// only when the signal is not obeyed in time, or at a second one.
	ctx, kill := context.WithCancel(context.WithoutCancel(cmd.Context()))
	defer kill()
	fwd := make(chan os.Signal, 8)
	opts.Signals = fwd
	killed := f.proxySignals(ctx, kill, fwd)
	c, err := openClient(cmd, g)
	if err != nil {
		return containerExit{exitRunFailed, "error: " + err.Error()}
	}
	err = c.Run(ctx, opts)
	return runExit(err, killed())
}

// proxySignals forwards builder's signals to the container and kills it
// (kill) when a stop signal is not obeyed within the stop timeout or comes
// twice. killed says whether it did.
func (f *runFlags) proxySignals(ctx context.Context, kill func(), fwd chan<- os.Signal) (killed func() string) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, proxiedSignals()...)
	why := make(chan string, 1)
	go func() {
		defer signal.Stop(sigs)
		var timeout <-chan time.Time
		stops := 0
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				select {
				case fwd <- s:
				default:
				}
				if !stopSignal(s) {
					continue
				}
				if stops++; stops > 1 {
					why <- fmt.Sprintf("a second %v: killed the container", s)
					kill()
					return
				}
				timeout = time.After(time.Duration(f.stopTimeout) * time.Second)
			case <-timeout:
				why <- fmt.Sprintf("the container did not stop within %ds of the signal: killed it", f.stopTimeout)
				kill()
				return
			}
		}
	}()
	return func() string {
		select {
		case s := <-why:
			return s
		default:
			return ""
		}
	}
}

// runExit maps the result of a run to builder's exit.
func runExit(err error, killedWhy string) error {
	var ee *client.ExitError
	switch {
	case err == nil:
		return nil
	case killedWhy != "":
		return containerExit{exitKilled, "builder run: " + killedWhy}
	case errors.As(err, &ee):
		msg := ""
		if ee.Limit != "" {
			msg = "builder run: " + ee.Error()
		}
		return containerExit{ee.Code, msg}
	case errors.Is(err, client.ErrExec) && errors.Is(err, fs.ErrNotExist):
		return containerExit{exitNotFound, "error: " + err.Error()}
	case errors.Is(err, client.ErrExec):
		return containerExit{exitCannotRun, "error: " + err.Error()}
	}
	return containerExit{exitRunFailed, "error: " + err.Error()}
}

// options turns the flags and arguments into client.RunOptions.
func (f *runFlags) options(cmd *cobra.Command, args []string) (client.RunOptions, error) {
	opts := client.RunOptions{Image: args[0], Args: args[1:], Workdir: f.workdir, User: f.user,
		Hostname: f.hostname, Name: f.name, Network: f.network, ReadOnly: f.readOnly, Commit: f.commit}
	if len(opts.Args) > 0 && opts.Args[0] == "--" {
		opts.Args = opts.Args[1:]
	}
	if cmd.Flags().Changed("entrypoint") {
		opts.Entrypoint = []string{}
		if f.entrypoint != "" {
			opts.Entrypoint = []string{f.entrypoint}
		}
	}
	if !f.rm {
		return opts, errors.New("--rm=false: builder run keeps no containers (use a volume to keep files)")
	}
	var err error
	if opts.Env, err = parseEnv(f.envFiles, f.env, os.LookupEnv); err != nil {
		return opts, err
	}
	if opts.Mounts, err = parseMounts(f.volumes, f.tmpfs, f.mounts); err != nil {
		return opts, err
	}
	if f.memory != "" {
		if opts.Limits.Memory, err = parseMemory(f.memory); err != nil {
			return opts, fmt.Errorf("--memory: %v", err)
		}
	}
	if f.cpus != "" {
		if opts.Limits.CPUs, err = parseCPUs(f.cpus, runtime.NumCPU()); err != nil {
			return opts, fmt.Errorf("--cpus: %v", err)
		}
	}
	switch {
	case cmd.Flags().Changed("pids-limit") && f.pids <= 0:
		opts.Limits.Pids = -1 // docker: 0 or -1 is no limit
	case f.pids > 0:
		opts.Limits.Pids = f.pids
	}
	if f.stopTimeout < 0 {
		return opts, fmt.Errorf("--stop-timeout %d: want 0 or more seconds", f.stopTimeout)
	}
	return opts, nil
}
