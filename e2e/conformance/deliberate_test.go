//go:build linux

package conformance

import (
	"regexp"
	"strings"
)

// deliberate lists the differences from BuildKit that builder keeps on
// purpose, each with its reason: a difference in a key that a rule matches
// (in a case it matches) is not reported.
var deliberate = []struct {
	name, reason string
	cases        *regexp.Regexp // nil: every case
	key          *regexp.Regexp
	// golden and got, when set, must match BuildKit's and builder's value
	// ("" when there is none).
	golden, got *regexp.Regexp
	// rewrite, when set, maps builder's value before comparing.
	rewrite *strings.Replacer
	// common: the rule applies to nearly every image; a case it alone
	// applies to counts as identical.
	common bool
}{
	{
		name:    "history comment",
		reason:  "history entries name the tool that made them: builder.dockerfile.v0, not buildkit.dockerfile.v0",
		key:     regexp.MustCompile(`^history\[\d+\]$`),
		rewrite: strings.NewReplacer(`comment="builder.dockerfile.v0"`, `comment="buildkit.dockerfile.v0"`),
		common:  true,
	},
	{
		name: "mount points",
		reason: "a RUN on an image without /dev, /proc or /sys: BuildKit's layer gets those mount-point " +
			"directories, builder's never does (mount points are the sandbox's, not the image's)",
		key:    regexp.MustCompile(`^layer\[\d+\] /(dev|proc|sys)$`),
		golden: regexp.MustCompile(`^dir `),
	},
	{
		name: "usage errors exit 2",
		reason: "--target naming no stage is a usage error (a bad flag value): builder's CLI exits 2 for those, " +
			"buildctl exits 1 for every failure",
		cases:  regexp.MustCompile(`^multistage_target_missing$`),
		key:    regexp.MustCompile(`^error\.exit$`),
		golden: regexp.MustCompile(`^1$`),
	},
	{
		name: "errors name their line",
		reason: "where BuildKit fails without naming a Dockerfile line (RUN --security=insecure without " +
			"--allow fails while loading the LLB; COPY --from=$VAR), builder names the instruction's line",
		key:    regexp.MustCompile(`^error\.line$`),
		golden: regexp.MustCompile(`^none$`),
	},
	{
		name: "sources outside the context",
		reason: "COPY ../../a.txt: BuildKit cleans the path inside the context (a.txt); builder refuses a " +
			"source that climbs out of the context (\"source is outside the build context\"): clearer, and " +
			"nothing outside is ever read (the choice e2e/errors_test.go documents)",
		cases: regexp.MustCompile(`^copy_dotdot_src$`),
		key:   regexp.MustCompile(`^result$`),
	},
	{
		name: "exec failure has no exit code",
		reason: "a RUN whose program cannot be executed (missing program, no /bin/sh in a scratch stage): " +
			"runc reports it as exit code 1, builder reports the exec error itself (both fail, at the same " +
			"line, with exit status 1)",
		key:    regexp.MustCompile(`^error\.code$`),
		golden: regexp.MustCompile(`^1$`),
		got:    regexp.MustCompile(`^none$`),
	},
}
