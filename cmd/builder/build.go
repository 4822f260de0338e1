package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

type buildFlags struct {
	file        string
	tags        []string
	target      string
	buildArgs   []string
	labels      []string
	outputs     []string
	compression string
	iidfile     string
	quiet       bool
	progress    string
	noCache     bool
	noCacheFilt []string
	secrets     []string
	ssh         []string
	provenance  string
	annotations []string
	contexts    []string
	network     string
	epoch       string
	checkRepro  bool
	cacheTo     []string
	cacheFrom   []string
	explain     bool
	metadata    string
	expectCache bool
	check       bool
	reg         buildRegistryFlags // registry.go
	lim         limitFlags         // limits.go
}

func newBuildCmd(g *globalFlags) *cobra.Command {
	f := &buildFlags{}
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args[0])
		},
	}
	g.lazyFlags(cmd, func() {
		fl := cmd.Flags()
		fl.StringVarP(&f.file, "file", "f", "", "Dockerfile path (default CONTEXT/Dockerfile; - reads stdin)")
		stringsVarP(fl, &f.tags, "tag", "t", "name and tag of the image (repeatable)")
		fl.StringVar(&f.target, "target", "", "build this stage")
		stringsVarP(fl, &f.buildArgs, "build-arg", "", "build-time variable K=V (K alone: from the environment)")
		stringsVarP(fl, &f.labels, "label", "", "image label K=V")
		stringsVarP(fl, &f.outputs, "output", "o", "export: type=oci|docker|oci-layout|local,dest=PATH")
		fl.StringVar(&f.compression, "compression", "gzip", "layer compression: gzip or zstd")
		fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to this file")
		fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image ID")
		fl.StringVar(&f.progress, "progress", "auto", "progress output: auto (tty on a terminal, else plain), tty (a live view), plain, rawjson (one JSON event a line) or quiet")
		fl.StringVar(&f.metadata, "metadata-file", "", "write the build result (image digests, names, cache hits, duration) as JSON to this file")
		fl.BoolVar(&f.noCache, "no-cache", false, "do not use the step cache")
		stringsVarP(fl, &f.noCacheFilt, "no-cache-filter", "", "do not use the step cache for this stage (repeatable)")
		stringsVarP(fl, &f.secrets, "secret", "", "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR (repeatable)")
		stringsVarP(fl, &f.ssh, "ssh", "", "SSH agent for RUN --mount=type=ssh: default (the $SSH_AUTH_SOCK agent) or ID=SOCKET|KEYFILE[,KEYFILE] (repeatable)")
		fl.StringVar(&f.provenance, "provenance", "", "attach a SLSA provenance attestation: true, false, mode=min|max[,builder-id=URI] (default mode=min when pushing)")
		stringsVarP(fl, &f.annotations, "annotation", "", "annotation [TYPE:]KEY=VALUE, TYPE manifest (default), index or manifest-descriptor (repeatable)")
		stringsVarP(fl, &f.contexts, "build-context", "", "named context NAME=VALUE: a directory, docker-image://REF, oci-layout://DIR[:TAG|@DIGEST], an https tarball or a git URL (repeatable)")
		fl.StringVar(&f.network, "network", "host", "network for RUN: host or none")
		fl.StringVar(&f.epoch, "source-date-epoch", "", "seconds since 1970: the image's created time and the newest file mtime (default $SOURCE_DATE_EPOCH)")
		fl.BoolVar(&f.checkRepro, "check-reproducible", false, "build again with no cache in a temporary store and compare (exit 1 when they differ)")
		stringsVarP(fl, &f.cacheTo, "cache-to", "", "export the build cache: type=registry,ref=REF[,mode=min|max] | type=local,dest=DIR[,mode=...] | type=inline (repeatable)")
		fl.BoolVar(&f.explain, "explain", false, "say every input that differs from the last build for each step that misses (default: the first)")
		fl.BoolVar(&f.expectCache, "expect-cached", false, "fail (exit 1) at the first step that would run, saying why it is not cached")
		stringsVarP(fl, &f.cacheFrom, "cache-from", "", "import a build cache: type=registry,ref=REF | type=local,src=DIR | REF (repeatable, tried in order)")
		fl.BoolVar(&f.check, "check", false, "run the build checks only: print their warnings and exit (1 when there are any) without building")
		f.reg.register(cmd)
		f.lim.register(cmd)
	})
	return cmd
}

func runBuild(cmd *cobra.Command, g *globalFlags, f *buildFlags, contextDir string) error {
	var opts client.BuildOptions
	opts.ContextDir, opts.Target, opts.NoCache, opts.NoCacheFilter, opts.Network = contextDir, f.target, f.noCache, f.noCacheFilt, f.network
	opts.Explain, opts.ExpectCached = f.explain, f.expectCache
	var err error
	if opts.Secrets, err = parseSecrets(f.secrets); err != nil {
		return err
	}
	if opts.SSH, err = parseSSH(f.ssh); err != nil {
		return err
	}
	if opts.Contexts, err = parseBuildContexts(f.contexts); err != nil {
		return err
	}
	st, err := os.Stat(contextDir)
	gitCtx := err != nil && client.IsGitContext(contextDir)
	if !gitCtx && (err != nil || !st.IsDir()) {
		return usagef("context %q is not a directory", contextDir)
	}
	switch {
	case gitCtx && f.file != "-":
		// A path in the repository, read once it is fetched.
		opts.DockerfileName = f.file
	case f.file == "-":
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		opts.Dockerfile, opts.DockerfileName = data, "Dockerfile"
	default:
		path := f.file
		if path == "" {
			path = filepath.Join(contextDir, "Dockerfile")
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return usagef("read Dockerfile: %v", err)
		}
		opts.Dockerfile, opts.DockerfileName = data, filepath.Base(path)
		// <Dockerfile>.dockerignore next to the Dockerfile wins over .dockerignore.
		if ign := path + ".dockerignore"; fileExists(ign) {
			opts.DockerignorePath = ign
		}
	}
	opts.Tags = f.tags
	if opts.BuildArgs, err = parseBuildArgs(f.buildArgs); err != nil {
		return err
	}
	if opts.Labels, err = parseKVs("--label", f.labels); err != nil {
		return err
	}
	switch f.compression {
	case "gzip":
		opts.Compression = client.Gzip
	case "zstd":
		opts.Compression = client.Zstd
	default:
		return usagef("--compression must be gzip or zstd, not %q", f.compression)
	}
	for _, o := range f.outputs {
		out, err := parseOutput(o)
		if err != nil {
			return err
		}
		if out.Dest == "-" {
			if out.W, err = stdoutForArchive(cmd, f.quiet, opts.Outputs); err != nil {
				return err
			}
		}
		opts.Outputs = append(opts.Outputs, out)
	}
	if opts.SourceDateEpoch, err = sourceDateEpoch(f.epoch, opts.BuildArgs); err != nil {
		return err
	}
	for _, v := range f.cacheTo {
		sp, err := client.ParseCacheSpec(v, true)
		if err != nil {
			return usagef("--cache-to: %v", err)
		}
		opts.CacheTo = append(opts.CacheTo, sp)
	}
	for _, v := range f.cacheFrom {
		sp, err := client.ParseCacheSpec(v, false)
		if err != nil {
			return usagef("--cache-from: %v", err)
		}
		opts.CacheFrom = append(opts.CacheFrom, sp)
	}
	prog, err := newProgress(cmd, f) // progress_tty.go
	if err != nil {
		return err
	}
	hits := &stepCounter{Reporter: prog}
	opts.Reporter = hits
	opts.HitsOnly = hitsOnly // a user's first try (fromcache.go)
	if err := f.reg.apply(&opts, progressWriter(cmd, f, prog)); err != nil {
		return err
	}
	if err := attestFlags(&opts, f.provenance, cmd.Flags().Changed("provenance"), f.annotations); err != nil {
		return err
	}
	if err := f.lim.apply(cmd, &opts); err != nil {
		return err
	}
	c, err := openClient(cmd, g)
	if err != nil {
		return err
	}
	if f.check {
		return runCheck(cmd, c, opts)
	}
	defer prog.CheckSummary(g.debug, opts.DockerfileName, opts.Dockerfile)
	start := time.Now()
	opts.OnBuilt = func(res *client.BuildResult) error {
		if f.iidfile != "" {
			if err := os.WriteFile(f.iidfile, []byte(res.ImageID.String()), 0o644); err != nil {
				return fmt.Errorf("write iidfile: %w", err)
			}
		}
		if f.quiet {
			fmt.Fprintln(cmd.OutOrStdout(), res.ImageID)
		} else {
			prog.Summary(res, time.Since(start))
		}
		if f.checkRepro {
			fmt.Fprintln(cmd.ErrOrStderr(), "checking reproducibility: building again with no cache in a temporary store")
		}
		return nil
	}
	if f.checkRepro {
		// A fresh reporter: the second build numbers its steps from #1 again.
		opts.CheckReproducible = true
		opts.CheckReporter = newPlainProgress(io.Discard)
		if !f.quiet && f.progress != "quiet" {
			opts.CheckReporter = newPlainProgress(cmd.ErrOrStderr())
		}
	}
	res, err := c.Build(cmd.Context(), opts)
	if res != nil && !f.quiet && f.progress != "quiet" {
		printCacheStats(cmd.ErrOrStderr(), res)
	}
	var ce *client.CheckError
	if errors.As(err, &ce) {
		return exitError{2, err} // trouble, as diff
	}
	if err != nil {
		prog.FailureTail()
		if jp, ok := prog.(*jsonProgress); ok {
			// rawjson: the failure is an event too, and nothing else is
			// written to stderr.
			jp.Failed(err)
			return exitError{code: exitFail}
		}
		return excerptError{err, opts.Dockerfile}
	}
	if opts.Push && !f.quiet && f.progress != "quiet" && !f.checkRepro {
		for _, t := range opts.Tags {
			fmt.Fprintf(cmd.ErrOrStderr(), "pushed %s\n", t)
		}
	}
	if f.metadata != "" {
		if err := writeMetadata(f.metadata, res, hits, time.Since(start)); err != nil {
			return err
		}
	}
	if !f.checkRepro {
		return nil
	}
	out := cmd.OutOrStdout()
	if res.Check.Identical {
		fmt.Fprintln(out, "reproducible:", res.ManifestDigest)
		return nil
	}
	fmt.Fprintln(out, "not reproducible: two builds of the same inputs differ")
	if err := res.Check.WriteText(out); err != nil {
		return err
	}
	if opts.SourceDateEpoch == nil && onlyTimes(res.Check) {
		fmt.Fprintln(out, "only timestamps differ: set SOURCE_DATE_EPOCH (or --source-date-epoch) to pin them")
	}
	if len(opts.Outputs) > 0 || opts.Push {
		fmt.Fprintln(cmd.ErrOrStderr(), "not exported or pushed: the check failed")
	}
	return exitError{code: exitDiffer}
}

// printCacheStats says what the imported and exported caches moved, and
// why an image is not in the store.
func printCacheStats(w io.Writer, res *client.BuildResult) {
	for _, s := range res.CacheImports {
		fmt.Fprintf(w, "cache: imported %d records from %s; fetched %d layers (%s in all)\n", s.Records, s.Name, s.Blobs, humanSize(s.Bytes))
	}
	for _, s := range res.CacheExports {
		streamed := ""
		if s.Streamed > 0 {
			streamed = fmt.Sprintf("; %d layers (%s) streamed during the build", s.Streamed, humanSize(s.StreamedBytes))
		}
		fmt.Fprintf(w, "cache: exported %d records to %s; uploaded %d layers (%s in all)%s\n", s.Records, s.Name, s.Blobs, humanSize(s.Bytes), streamed)
	}
	if res.NotKept {
		fmt.Fprintln(w, "not kept in the store: some layers are only in the registry of the imported cache (pushed, never downloaded); build without --push to keep it")
	}
}

// onlyTimes reports whether every difference is a created time of the config.
func onlyTimes(rep *client.DiffReport) bool {
	if len(rep.Manifest) > 0 || len(rep.Layers) > 0 {
		return false
	}
	for _, d := range rep.Config {
		if d.Path != "created" && !(strings.HasPrefix(d.Path, "history[") && strings.HasSuffix(d.Path, "].created")) {
			return false
		}
	}
	return true
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// parseBuildArgs reads K=V pairs; a bare K takes its value from the
// environment (and is skipped when unset, as docker does).
func parseBuildArgs(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, usagef("malformed --build-arg %q: want KEY=VALUE", a)
		}
		if !ok {
			ev, set := os.LookupEnv(k)
			if !set {
				continue
			}
			v = ev
		}
		out[k] = v
	}
	return out, nil
}

func parseKVs(flag string, in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, a := range in {
		k, v, ok := strings.Cut(a, "=")
		if k == "" || !ok {
			return nil, usagef("malformed %s %q: want KEY=VALUE", flag, a)
		}
		out[k] = v
	}
	return out, nil
}

// stdoutForArchive is where an output with dest=- writes: stdout, when it
// is not a terminal and nothing else writes there.
func stdoutForArchive(cmd *cobra.Command, quiet bool, earlier []client.Output) (io.Writer, error) {
	for _, o := range earlier {
		if o.Dest == "-" {
			return nil, usagef("only one --output can write to dest=- (stdout)")
		}
	}
	if quiet {
		return nil, usagef("--quiet prints the image ID on stdout: it cannot be combined with an --output to dest=-")
	}
	w := cmd.OutOrStdout()
	if f, ok := w.(*os.File); ok && isTerminal(f) {
		return nil, usagef("refusing to write an archive to a terminal: redirect stdout (--output ...,dest=- > out.tar) or give dest=FILE")
	}
	return w, nil
}

// parseOutput reads "type=oci,dest=out.tar" (or a bare path: local).
func parseOutput(s string) (client.Output, error) {
	if s == "-" {
		return client.Output{Type: "tar", Dest: "-"}, nil // buildx: -o - is the rootfs tar on stdout
	}
	if !strings.Contains(s, "=") {
		return client.Output{Type: "local", Dest: s}, nil
	}
	var o client.Output
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return o, usagef("malformed --output %q", s)
		}
		switch strings.TrimSpace(k) {
		case "type":
			o.Type = v
		case "dest", "name":
			o.Dest = v
		case "push":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, usagef("--output %q: push must be true or false", s)
			}
			o.Push = b
		default:
			return o, usagef("--output %q: unknown key %q", s, k)
		}
	}
	switch o.Type {
	case "oci", "docker", "oci-layout", "local", "tar":
	case "image", "registry":
		o.Type = "image"
		if o.Dest == "" {
			return o, usagef("--output %q: name= is required", s)
		}
		if strings.Contains(","+s+",", ",type=registry,") {
			o.Push = true // BuildKit: type=registry is type=image,push=true
		}
	default:
		return o, usagef("--output %q: type must be oci, docker, oci-layout, local, tar, image or registry", s)
	}
	if o.Dest == "-" && o.Type != "oci" && o.Type != "docker" && o.Type != "tar" {
		return o, usagef("--output %q: only type=oci, docker or tar can write to dest=- (stdout)", s)
	}
	if o.Push && o.Type != "image" {
		return o, usagef("--output %q: push= is only for type=image", s)
	}
	if o.Dest == "" {
		return o, usagef("--output %q: dest= is required", s)
	}
	return o, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH from --source-date-epoch, else
// --build-arg, else the environment. Like buildx, a value from the flag or
// the environment is also passed as the build arg, so that `ARG
// SOURCE_DATE_EPOCH` sees it.
func sourceDateEpoch(flag string, buildArgs map[string]string) (*time.Time, error) {
	v, ok := flag, flag != ""
	if !ok {
		v, ok = buildArgs["SOURCE_DATE_EPOCH"]
	}
	if !ok {
		v, ok = os.LookupEnv("SOURCE_DATE_EPOCH")
	}
	if !ok || v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, usagef("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", v)
	}
	buildArgs["SOURCE_DATE_EPOCH"] = v
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

func openClient(cmd *cobra.Command, g *globalFlags) (*client.Client, error) {
	c, err := client.Open(cmd.Context(), g.root)
	if err != nil {
		return nil, err
	}
	g.opened = append(g.opened, c)
	return c, nil
}

// parseSecrets reads --secret values: id=ID,src=FILE (also source=) or
// id=ID,env=VAR; a bare id=ID reads $ID, as docker build does. Contents are
// kept in memory: nothing is written until a RUN mounts them.
func parseSecrets(in []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, s := range in {
		var id, src, env string
		for _, part := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(part, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return nil, usagef("--secret %q: type must be file or env", s)
				}
			default:
				return nil, usagef("--secret %q: unknown key %q", s, k)
			}
		}
		if id == "" {
			return nil, usagef("--secret %q: id= is required", s)
		}
		if src != "" {
			data, err := os.ReadFile(src)
			if err != nil {
				return nil, usagef("--secret %q: %v", s, err)
			}
			out[id] = data
			continue
		}
		if env == "" {
			env = id
		}
		v, ok := os.LookupEnv(env)
		if !ok {
			return nil, usagef("--secret %q: environment variable %s is not set", s, env)
		}
		out[id] = []byte(v)
	}
	return out, nil
}
