package parser

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busybox is a base image as the engine resolves it for a stage.
var busybox = BaseImage{Env: []string{"PATH=/bin", "HOME=/root"}, Platform: hostPlatform()}

// checkCase is a Dockerfile and the warnings Check must give: "Rule:line",
// in order. Every rule has a case that fires and one that does not.
type checkCase struct {
	name string
	df   string
	opts CheckOptions
	want []string
}

func runCheckCases(t *testing.T, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			df, err := Parse(strings.NewReader(tc.df), "Dockerfile")
			if err != nil {
				t.Fatal(err)
			}
			opts := tc.opts
			if opts.Bases == nil {
				// Every stage FROM an image gets busybox.
				opts.Bases = map[int]BaseImage{}
				for i := range df.Stages {
					opts.Bases[i] = busybox
				}
			}
			ws, err := df.Check(opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range ws {
				got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Line))
			}
			if !slices.Equal(got, tc.want) {
				var msgs []string
				for _, w := range ws {
					msgs = append(msgs, w.Short())
				}
				t.Errorf("got %q, want %q\n%s", got, tc.want, strings.Join(msgs, "\n"))
			}
		})
	}
}

func TestCheckParseRules(t *testing.T) {
	runCheckCases(t, []checkCase{
		{name: "StageNameCasing", df: "FROM busybox AS Build\nFROM busybox AS build2\n", want: []string{"StageNameCasing:1"}},
		{name: "FromAsCasing", df: "FROM busybox as a\nFROM busybox AS b\nfrom busybox as c\n", want: []string{"FromAsCasing:1", "ConsistentInstructionCasing:3"}},
		{name: "MaintainerDeprecated", df: "FROM busybox\nMAINTAINER me\nLABEL org.opencontainers.image.authors=me\n", want: []string{"MaintainerDeprecated:2"}},
		{name: "NoEmptyContinuation", df: "FROM busybox\nRUN echo a \\\n\n  b\nRUN echo c \\\n  d\n", want: []string{"NoEmptyContinuation:4"}},
		{name: "InvalidDefinitionDescription off by default", df: "FROM busybox\n# the version\nARG VERSION=1\n", want: nil},
		{name: "InvalidDefinitionDescription experimental", df: "# check=experimental=InvalidDefinitionDescription\nFROM busybox\n# the version\nARG VERSION=1\n# NAME the name\nARG NAME=x\n",
			want: []string{"InvalidDefinitionDescription:4"}},
	})
}

func TestCheckStageRules(t *testing.T) {
	runCheckCases(t, []checkCase{
		{name: "ReservedStageName", df: "FROM busybox AS scratch\nFROM busybox AS context\nFROM busybox AS ok\n", want: []string{"ReservedStageName:1", "ReservedStageName:2"}},
		{name: "DuplicateStageName", df: "FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS a\n", want: []string{"DuplicateStageName:3"}},
		{name: "ConsistentInstructionCasing majority upper", df: "FROM busybox\nrun true\nRUN true\nCOPY a b\n", want: []string{"ConsistentInstructionCasing:2"}},
		{name: "ConsistentInstructionCasing majority lower", df: "from busybox\nrun true\nRUN true\ncopy a b\n", want: []string{"ConsistentInstructionCasing:3"}},
		{name: "ConsistentInstructionCasing mixed word", df: "FROM busybox\nRun true\n", want: []string{"ConsistentInstructionCasing:2"}},
		{name: "ConsistentInstructionCasing consistent", df: "from busybox\nrun true\n", want: nil},
	})
}

func TestCheckFromRules(t *testing.T) {
	runCheckCases(t, []checkCase{
		{name: "UndefinedArgInFrom", df: "ARG VERSION=1\nFROM busybox:${VERSIN}\nFROM busybox:${VERSION}\n", want: []string{"InvalidDefaultArgInFrom:2", "UndefinedArgInFrom:2"}},
		{name: "UndefinedArgInFrom declared without value", df: "ARG TAG=latest\nARG IMG\nFROM ${IMG:-busybox}:${TAG}\n", want: nil},
		{name: "UndefinedArgInFrom platform", df: "FROM --platform=$BUILDPLATFRM busybox\n", want: []string{"UndefinedArgInFrom:1"}},
		{name: "UndefinedArgInFrom automatic", df: "FROM --platform=$BUILDPLATFORM busybox AS b\n", want: nil},
		{name: "InvalidDefaultArgInFrom", df: "ARG TAG\nFROM busybox:${TAG}\n", want: []string{"InvalidDefaultArgInFrom:2"}},
		{name: "InvalidDefaultArgInFrom empty", df: "ARG IMAGE\nFROM ${IMAGE}\n", opts: CheckOptions{BuildArgs: map[string]string{"IMAGE": "busybox"}}, want: []string{"InvalidDefaultArgInFrom:2"}},
		{name: "InvalidDefaultArgInFrom has default", df: "ARG TAG=latest\nFROM busybox:${TAG}\n", want: nil},
		{name: "RedundantTargetPlatform", df: "FROM --platform=$TARGETPLATFORM busybox\nFROM --platform=${TARGETPLATFORM} busybox\n", want: []string{"RedundantTargetPlatform:1", "RedundantTargetPlatform:2"}},
		{name: "RedundantTargetPlatform build platform", df: "FROM --platform=$BUILDPLATFORM busybox\n", want: nil},
		{name: "FromPlatformFlagConstDisallowed", df: "FROM --platform=linux/arm64 busybox AS build\n", want: []string{"FromPlatformFlagConstDisallowed:1"}},
		{name: "FromPlatformFlagConstDisallowed named for it", df: "FROM --platform=linux/arm64 busybox AS build-arm64\nFROM --platform=linux/amd64 busybox AS linux\n", want: nil},
		{name: "FromPlatformFlagConstDisallowed normalized", df: "FROM --platform=linux/aarch64 busybox AS b-arm64\n", want: nil},
	})
}

func TestCheckDispatchRules(t *testing.T) {
	ig := func(p ...string) CheckOptions { return CheckOptions{Ignore: p} }
	runCheckCases(t, []checkCase{
		{name: "JSONArgsRecommended", df: "FROM busybox\nCMD echo hi\nENTRYPOINT echo hi\n", want: []string{"JSONArgsRecommended:2", "JSONArgsRecommended:3"}},
		{name: "JSONArgsRecommended exec form or SHELL", df: "FROM busybox\nCMD [\"echo\"]\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT echo hi\n", want: nil},
		{name: "JSONArgsRecommended base SHELL", df: "FROM busybox\nCMD echo hi\n", opts: CheckOptions{Bases: map[int]BaseImage{0: {Shell: []string{"/bin/bash", "-c"}, Platform: hostPlatform()}}}, want: nil},
		{name: "LegacyKeyValueFormat", df: "FROM busybox\nENV A 1\nLABEL b 2\nENV C=3\n", want: []string{"LegacyKeyValueFormat:2", "LegacyKeyValueFormat:3"}},
		{name: "SecretsUsedInArgOrEnv", df: "FROM busybox\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x\nARG PUBLIC_KEY\nENV KEYBOARD=us\nARG AWS_SECRET_ACCESS_KEY\n", want: []string{"SecretsUsedInArgOrEnv:2", "SecretsUsedInArgOrEnv:3", "SecretsUsedInArgOrEnv:6"}},
		{name: "MultipleInstructionsDisallowed", df: "FROM busybox\nCMD [\"a\"]\nCMD [\"b\"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\nENTRYPOINT [\"c\"]\nFROM busybox\nCMD [\"d\"]\n", want: []string{"MultipleInstructionsDisallowed:2", "MultipleInstructionsDisallowed:4"}},
		{name: "WorkdirRelativePath", df: "FROM busybox\nWORKDIR app\nWORKDIR sub\n", want: []string{"WorkdirRelativePath:2"}},
		{name: "WorkdirRelativePath after absolute", df: "FROM busybox AS a\nWORKDIR /app\nFROM a\nWORKDIR sub\n", want: nil},
		{name: "ExposeProtoCasing", df: "FROM busybox\nEXPOSE 80/TCP 81/udp\n", want: []string{"ExposeProtoCasing:2"}},
		{name: "ExposeInvalidFormat", df: "FROM busybox\nEXPOSE 127.0.0.1:80:80 8080:80 443 :81\n", want: []string{"ExposeInvalidFormat:2", "ExposeInvalidFormat:2"}},
		{name: "ExposeInvalidFormat expanded", df: "FROM busybox\nARG P=\"80 90:90\"\nEXPOSE $P\n", want: []string{"ExposeInvalidFormat:3"}},
		{name: "CopyIgnoredFile", df: "FROM busybox\nCOPY secret.txt /\nADD logs/x.log /\nCOPY app.go /\nCOPY --from=busybox secret.txt /\n", opts: ig("secret.txt", "logs"), want: []string{"CopyIgnoredFile:2", "CopyIgnoredFile:3"}},
		{name: "CopyIgnoredFile expanded source", df: "FROM busybox\nARG F=secret.txt\nCOPY $F /\n", opts: ig("secret.txt"), want: []string{"CopyIgnoredFile:3"}},
		{name: "CopyIgnoredFile root", df: "FROM busybox\nCOPY . /app\n", opts: ig("*.md"), want: nil},
		{name: "CopyIgnoredFile root all", df: "FROM busybox\nCOPY . /app\n", opts: ig("*"), want: []string{"CopyIgnoredFile:2"}},
		{name: "CopyIgnoredFile exclusions", df: "FROM busybox\nCOPY secret.txt /\n", opts: ig("secret*", "!secret.txt"), want: nil},
		{name: "CopyIgnoredFile ADD URL", df: "FROM busybox\nADD https://example.com/secret.txt /\n", opts: ig("*"), want: nil},
		{name: "UndefinedVar", df: "FROM busybox\nCOPY $SRC /\nRUN echo $NOPE\nWORKDIR $HOME\n", want: []string{"UndefinedVar:2"}},
		{name: "UndefinedVar declared", df: "FROM busybox\nARG V\nENV E=1\nCOPY $V$E$PATH /\nENV X=$Y\n", want: []string{"UndefinedVar:5"}},
		{name: "UndefinedVar from parent stage", df: "FROM busybox AS a\nARG A\nENV B=1\nFROM a\nCOPY $A$B /\n", want: nil},
		{name: "UndefinedVar global ARG needs redeclaring", df: "ARG G=1\nFROM busybox\nCOPY $G /\nARG G\nCOPY $G /\n", want: []string{"UndefinedVar:3"}},
		{name: "UndefinedVar ARG default", df: "FROM busybox\nARG A=$NOPE\n", want: []string{"UndefinedVar:2"}},
		{name: "UndefinedVar same instruction ENV", df: "FROM busybox\nENV A=1 B=$A\n", want: []string{"UndefinedVar:2"}},
		{name: "UndefinedVar unknown base", df: "FROM busybox\nCOPY $FROM_IMAGE /\n", opts: CheckOptions{Bases: map[int]BaseImage{}}, want: nil},
		{name: "UndefinedVar heredoc", df: "FROM busybox\nCOPY <<EOF /f\n$NOPE\nEOF\n", want: []string{"UndefinedVar:2"}},
		{name: "ONBUILD of the base image at FROM", df: "FROM busybox\nCMD [\"x\"]\n",
			opts: CheckOptions{Bases: map[int]BaseImage{0: {Platform: hostPlatform(), OnBuild: []string{"ENV A 1", "COPY $A$B /"}}}},
			want: []string{"LegacyKeyValueFormat:1", "UndefinedVar:1"}},
		{name: "ONBUILD of the parent stage", df: "FROM busybox AS a\nONBUILD CMD echo hi\nFROM a\n", want: []string{"JSONArgsRecommended:3"}},
		{name: "UndefinedVar scratch", df: "FROM scratch\nCOPY $PATH$X /\n", want: []string{"UndefinedVar:2"}},
	})
}

func TestCheckBasePlatform(t *testing.T) {
	other := ocispec.Platform{OS: "linux", Architecture: "s390x"}
	if runtime.GOARCH == "s390x" {
		other.Architecture = "amd64"
	}
	runCheckCases(t, []checkCase{
		{name: "InvalidBaseImagePlatform", df: "FROM busybox\nFROM busybox\n",
			opts: CheckOptions{Bases: map[int]BaseImage{0: {Platform: other}, 1: busybox}}, want: []string{"InvalidBaseImagePlatform:1"}},
		{name: "InvalidBaseImagePlatform asked", df: "FROM --platform=$BUILDPLATFORM busybox\n",
			opts: CheckOptions{Bases: map[int]BaseImage{0: {Platform: other, Wanted: other}}}, want: nil},
		{name: "InvalidBaseImagePlatform empty image", df: "FROM busybox\n",
			opts: CheckOptions{Bases: map[int]BaseImage{0: {Platform: other, Empty: true}}}, want: nil},
	})
}

// The stages a build runs: rules on instructions skip the others, rules
// on the Dockerfile do not.
func TestCheckStages(t *testing.T) {
	runCheckCases(t, []checkCase{
		{name: "unbuilt stage", df: "FROM busybox AS a\nCMD echo a\nFROM busybox AS Final\nCMD echo b\n",
			opts: CheckOptions{Stages: []int{1}}, want: []string{"StageNameCasing:3", "JSONArgsRecommended:4"}},
		{name: "every stage", df: "FROM busybox AS a\nCMD echo a\nFROM busybox AS b\nCMD echo b\n", want: []string{"JSONArgsRecommended:2", "JSONArgsRecommended:4"}},
	})
}

func TestCheckConfig(t *testing.T) {
	const body = "FROM busybox AS Build\nCMD echo hi\nENV A 1\n"
	runCheckCases(t, []checkCase{
		{name: "skip", df: "# check=skip=JSONArgsRecommended,StageNameCasing\n" + body, want: []string{"LegacyKeyValueFormat:4"}},
		{name: "skip all", df: "# check=skip=all\n" + body, want: nil},
		{name: "build arg replaces directive", df: "# check=skip=all\n" + body,
			opts: CheckOptions{BuildArgs: map[string]string{"BUILDKIT_DOCKERFILE_CHECK": "skip=LegacyKeyValueFormat"}}, want: []string{"StageNameCasing:2", "JSONArgsRecommended:3"}},
		{name: "comment before an instruction", df: "FROM busybox\n# check=skip=JSONArgsRecommended\nCMD echo a\nENTRYPOINT echo b\n", want: []string{"JSONArgsRecommended:4"}},
	})
}

func TestCheckErrors(t *testing.T) {
	parse := func(s string) *Dockerfile {
		df, err := Parse(strings.NewReader(s), "Dockerfile")
		if err != nil {
			t.Fatal(err)
		}
		return df
	}
	ws, err := parse("# check=error=true\nFROM busybox\nCMD echo hi\nENV A 1\n").Check(CheckOptions{})
	if !errors.Is(err, ErrChecks) || len(ws) != 2 || err.Error() != "Dockerfile: lint violation found for rules: JSONArgsRecommended, LegacyKeyValueFormat" {
		t.Errorf("error=true: %d warnings, %v", len(ws), err)
	}
	if _, err := parse("# check=error=true\nFROM busybox\nCMD [\"x\"]\n").Check(CheckOptions{}); err != nil {
		t.Errorf("error=true without warnings: %v", err)
	}
	_, err = parse("# check=skip=all;bogus=1\nFROM busybox\n").Check(CheckOptions{})
	var pe *Error
	if !errors.As(err, &pe) || pe.Line != 1 || !strings.Contains(err.Error(), `failed to parse check options: invalid check option "bogus"`) {
		t.Errorf("bad directive: %v", err)
	}
	_, err = parse("FROM busybox\n").Check(CheckOptions{BuildArgs: map[string]string{"BUILDKIT_DOCKERFILE_CHECK": "error=maybe"}})
	if err == nil || !strings.Contains(err.Error(), "BUILDKIT_DOCKERFILE_CHECK") {
		t.Errorf("bad build arg: %v", err)
	}
}

func TestCheckMessages(t *testing.T) {
	df, err := Parse(strings.NewReader("ARG VERSION=1\nFROM busybox:${VERSON}\nRUN true\nCOPY $HOEM /\n"), "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := df.Check(CheckOptions{Bases: map[int]BaseImage{0: busybox}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"InvalidDefaultArgInFrom: Default value for ARG busybox:${VERSON} results in empty or invalid base image name (line 2)",
		"UndefinedArgInFrom: FROM argument 'VERSON' is not declared (did you mean VERSION?) (line 2)",
		"UndefinedVar: Usage of undefined variable '$HOEM' (did you mean $HOME?) (line 4)",
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.Short())
		if w.URL == "" || w.Description == "" {
			t.Errorf("%s: no URL or description", w.Rule)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestValidReference(t *testing.T) {
	for s, want := range map[string]bool{
		"busybox": true, "busybox:1.36": true, "localhost:5000/a/b:v1": true, "Registry.Example/a": true,
		"a@sha256:" + strings.Repeat("a", 64): true, "docker.io/library/x": true,
		"": false, "busybox:": false, "Busybox": false, "a/B": false, strings.Repeat("a", 64): false,
		"a@sha256:abc": false, "a:b:c": false,
	} {
		if got := validReference(s); got != want {
			t.Errorf("validReference(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestValidReferenceMatchesGrammar: the hand scanner accepts exactly what
// the grammar's regular expression (with validReference's extra rules)
// accepts, on chosen references and random ones.
func TestValidReferenceMatchesGrammar(t *testing.T) {
	domainComp := `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	host := `(?:` + domainComp + `(?:\.` + domainComp + `)*|\[[a-fA-F0-9:]+\])`
	domain := host + `(?::[0-9]+)?`
	pathComp := `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	name := `(?:` + domain + `/)?` + pathComp + `(?:/` + pathComp + `)*`
	tag := `[\w][\w.-]{0,127}`
	dgst := `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	re := regexp.MustCompile(`^(` + name + `)(?::` + tag + `)?(?:@(` + dgst + `))?$`)
	hex64 := regexp.MustCompile(`^[a-f0-9]{64}$`)
	want := func(s string) bool {
		if hex64.MatchString(s) {
			return false
		}
		m := re.FindStringSubmatch(s)
		if m == nil || len(m[1]) > 255 {
			return false
		}
		if alg, hex, ok := strings.Cut(m[2], ":"); ok {
			switch alg {
			case "sha256":
				return len(hex) == 64
			case "sha512":
				return len(hex) == 128
			}
		}
		return true
	}
	h32, h64 := strings.Repeat("a", 32), strings.Repeat("b", 64)
	refs := []string{"", "a", "A", "a:b", "a:", ":a", "a@", "@a", "a/b/c:d@sha256:" + h64, "[::1]:5000/a", "[::1]/a", "[]/a",
		"[::1]", "[g]/a", "[::1]x/a", "host:/a", "host:5000/a", "host:50a0/a", "Host.Example.COM/a", "-a/b", "a-/b", "a..b/c",
		"a.b", "a._b", "a__b", "a___b", "a--b", "a-_b", "a@x:" + h32, "a@1x:" + h32, "a@x-y+z.w_v:" + h32, "a@x--y:" + h32,
		"a@x:" + h32[:31], "a@sha256:" + h32, "a@sha512:" + h64 + h64, "a@x:" + h32 + "@y:" + h32, "a:" + strings.Repeat("t", 128),
		"a:" + strings.Repeat("t", 129), "a:.t", "a:-t", "a:_t", strings.Repeat("a/", 127) + "a", strings.Repeat("a/", 128) + "a", h64,
		"a/" + h64, "localhost/a:b:c", "a/b:c/d", "a:b/c"}
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "Z", "0", "9", "f", ".", "_", "__", "-", "/", ":", "@", "[", "]", "::1", "sha256:", h32, "+", " ", "é"}
	for range 50000 {
		var b strings.Builder
		for range rng.IntN(10) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		refs = append(refs, b.String())
	}
	valid := 0
	for _, s := range refs {
		got, w := validReference(s), want(s)
		if got != w {
			t.Errorf("validReference(%q) = %v, the grammar says %v", s, got, w)
		}
		if w {
			valid++
		}
	}
	if valid < len(refs)/20 {
		t.Errorf("only %d of %d references are valid: the test checks little", valid, len(refs))
	}
}
