package main

import (
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// limitFlags are the resource limits of RUN (docker run's --memory, --cpus
// and --pids-limit) and the entitlements (buildx's --allow).
type limitFlags struct {
	memory string
	cpus   string
	pids   int64
	allow  []string
}

func (l *limitFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&l.memory, "memory", "m", "", "memory limit of each RUN, as docker run: 512m, 2g (binary units; at least 6m)")
	fl.StringVar(&l.cpus, "cpus", "", "CPU limit of each RUN, as docker run: 1.5")
	fl.Int64Var(&l.pids, "pids-limit", 0, "process (and thread) limit of each RUN; -1: none (default 64 per CPU, at least 1024)")
	fl.StringSliceVar(&l.allow, "allow", nil, "allow an entitlement: security.insecure (RUN --security=insecure), network.host")
}

// apply parses the flags into opts. When this machine gives builder no
// cgroup (not root, and none delegated), the build says so once, at its
// first RUN, and RUN goes without limits.
func (l *limitFlags) apply(cmd *cobra.Command, opts *client.BuildOptions) error {
	for _, a := range l.allow {
		switch a {
		case "security.insecure":
			opts.AllowInsecure = true
		case "network.host": // RUN's default network already
		default:
			return usagef("--allow %q: want security.insecure or network.host", a)
		}
	}
	var err error
	if l.memory != "" {
		if opts.Limits.Memory, err = parseMemory(l.memory); err != nil {
			return usagef("--memory: %v", err)
		}
	}
	if l.cpus != "" {
		if opts.Limits.CPUs, err = parseCPUs(l.cpus, runtime.NumCPU()); err != nil {
			return usagef("--cpus: %v", err)
		}
	}
	switch {
	case cmd.Flags().Changed("pids-limit") && l.pids <= 0:
		opts.Limits.Pids = -1 // docker: 0 or -1 is no limit
	case l.pids > 0:
		opts.Limits.Pids = l.pids
	}
	// Whether this machine can enforce them is found at the first RUN
	// (executor: a fully cached build makes no cgroup).
	return nil
}

// memoryRE is docker's RAMInBytes syntax: a number, then k, m, g, t or p,
// optionally followed by i and b; every unit is binary.
var memoryRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`) })

// parseMemory reads a memory size as docker run --memory does.
func parseMemory(s string) (int64, error) {
	m := memoryRE().FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want a number and an optional unit: b, k, m, g)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	shift := 0
	if m[2] != "" {
		shift = strings.Index("kmgtp", strings.ToLower(m[2])) + 1
	}
	bytes := n * math.Pow(1024, float64(shift))
	if bytes > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if bytes < 6<<20 {
		return 0, fmt.Errorf("%q is below the minimum of 6m", s)
	}
	return int64(bytes), nil
}

// parseCPUs reads a CPU count as docker run --cpus does: from 0.01 to the
// number of CPUs.
func parseCPUs(s string, ncpu int) (float64, error) {
	n, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(n) || math.IsInf(n, 0):
		return 0, fmt.Errorf("invalid number %q", s)
	case n < 0.01 || n > float64(ncpu):
		return 0, fmt.Errorf("%s is out of range: from 0.01 to %d, the CPUs of this machine", s, ncpu)
	}
	return n, nil
}
