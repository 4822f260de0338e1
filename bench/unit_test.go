package bench

// Unit tests of the harness's pure parts: they run everywhere, root or not.

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestMedianOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		var s []sample
		for _, v := range tc.in {
			s = append(s, sample{WallMS: v})
		}
		if got := medianOf(s, wallOf); got != tc.want {
			t.Errorf("medianOf(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	var s sample
	if err := parseTime("Command exited with non-zero status 1\n0.25 1.50 20480\n", &s); err != nil {
		t.Fatal(err)
	}
	if s.UserMS != 250 || s.SysMS != 1500 || s.MaxRSSKB != 20480 {
		t.Errorf("parseTime = %+v", s)
	}
	for _, bad := range []string{"", "0.25 1.50", "a b c"} {
		if err := parseTime(bad, &s); err == nil {
			t.Errorf("parseTime(%q): no error", bad)
		}
	}
}

func TestCheckSteps(t *testing.T) {
	cold := "#1 [stage-0 1/3] FROM busybox DONE 0.000s\n#2 [stage-0 2/3] RUN true DONE 0.033s\n#3 [stage-0 3/3] COPY a /x CACHED 0.000s\n"
	warm := "#1 [stage-0 1/2] FROM busybox DONE 0.000s\n#2 [stage-0 2/2] RUN true CACHED 0.000s\n"
	fresh := "#1 [stage-0 1/3] FROM r/busybox:latest DONE 0.000s\n#2 [stage-0 2/3] COPY . /data/ CACHED (registry r/cache:x) 0.009s\n" +
		"#3 [stage-0 3/3] RUN echo DONE 1.0s CACHED (registry r/cache:x) 0.000s\n"
	logged := "#2 [stage-0 2/2] RUN echo hi\n#2 hi DONE 1.0s\n#2 [stage-0 2/2] RUN echo hi CACHED 0.000s\n"
	for _, tc := range []struct {
		out, want string
		ok        bool
	}{
		{cold, "miss", true}, {cold, "hit", false}, {cold, "", true},
		{warm, "hit", true}, {warm, "miss", false},
		{fresh, "hit", true}, {fresh, "miss", false},
		{logged, "hit", true},
	} {
		if err := checkSteps(tc.out, tc.want); (err == nil) != tc.ok {
			t.Errorf("checkSteps(%q, %q) = %v, want ok=%v", tc.out, tc.want, err, tc.ok)
		}
	}
}

func TestAptMirror(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" means an error
	}{
		{"deb822, security first", map[string]string{
			"sources.list.d/debian.sources": "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n" +
				"Types: deb-src deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\n",
		}, "http://mirror.example/debian"},
		{"deb822, deb-src only", map[string]string{
			"sources.list.d/debian.sources": "Types: deb-src\nURIs: http://mirror.example/debian\nSuites: bookworm\n",
		}, ""},
		{"one-line, with options and comments", map[string]string{
			"sources.list": "# deb http://old.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n",
		}, "http://mirror.example/debian"},
		{"one-line security is skipped", map[string]string{
			"sources.list": "deb http://security.example/debian-security bookworm-security main\ndeb https://mirror.example/debian/ bookworm main\n",
		}, "https://mirror.example/debian"},
		{"nothing", map[string]string{"sources.list": "\n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etc := t.TempDir()
			for name, data := range tc.files {
				p := filepath.Join(etc, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := aptMirror(etc)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("aptMirror = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("aptMirror = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestWithChange(t *testing.T) {
	got := withChange("FROM b\nRUN true\n", 2)
	if got != "FROM b\nRUN true # change 2\n" {
		t.Errorf("withChange = %q", got)
	}
}

// TestWorkloadsRender: every Dockerfile names the base, ends with a RUN
// where one-change edits the last line, and the quick contexts hold the
// file one-change edits.
func TestWorkloadsRender(t *testing.T) {
	for _, w := range workloads() {
		for _, sz := range []sizes{quickSizes, fullSizes} {
			df := w.dockerfile("reg/base:1", sz)
			if !strings.Contains(df, "FROM reg/base:1") {
				t.Errorf("%s: no FROM of the base:\n%s", w.name, df)
			}
			lines := strings.Split(strings.TrimSpace(df), "\n")
			if w.changeFile == "" && !w.huge && !strings.HasPrefix(lines[len(lines)-1], "RUN ") {
				t.Errorf("%s: last line %q is not a RUN", w.name, lines[len(lines)-1])
			}
		}
		if w.generate == nil {
			continue
		}
		dir := t.TempDir()
		if err := w.generate(dir, quickSizes); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, w.changeFile)); err != nil {
			t.Errorf("%s: one-change file: %v", w.name, err)
		}
	}
	if got := strings.Count(manyLayersDockerfile("b", fullSizes), "\nRUN "); got != fullSizes.layers {
		t.Errorf("many-layers has %d RUN steps, want %d", got, fullSizes.layers)
	}
}

// TestGenBigSize: the copy-big context has exactly the files and bytes asked.
func TestGenBigSize(t *testing.T) {
	dir := t.TempDir()
	sz := sizes{bigFiles: 300, bigBytes: 3 << 20}
	if err := genBig(dir, sz); err != nil {
		t.Fatal(err)
	}
	files, bytes, err := contextSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files != sz.bigFiles || bytes != sz.bigBytes {
		t.Errorf("genBig: %d files, %d bytes; want %d, %d", files, bytes, sz.bigFiles, sz.bigBytes)
	}
}

// TestGenHuge: the huge context has the large and small files asked (at a
// tiny size), and a quick run leaves the workload out.
func TestGenHuge(t *testing.T) {
	dir := t.TempDir()
	sz := sizes{hugeLarge: 3, hugeBytes: 1 << 20, hugeSmall: 250}
	if err := genHuge(dir, sz); err != nil {
		t.Fatal(err)
	}
	files, bytes, err := contextSize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files != 253 || bytes < 3<<20+250*1024 || bytes > 3<<20+250*64<<10 {
		t.Errorf("genHuge: %d files, %d bytes", files, bytes)
	}
	if *fullRun {
		t.Skip("a full run keeps huge")
	}
	for _, w := range withoutHuge(workloads()) {
		if w.huge {
			t.Errorf("a quick run keeps %s", w.name)
		}
	}
}

// TestReportGolden renders fixed results: the table, the floor and the
// targets, judged (full) and not (quick).
func TestReportGolden(t *testing.T) {
	mk := func(vals ...float64) []sample {
		var s []sample
		for _, v := range vals {
			s = append(s, sample{WallMS: v, MaxRSSKB: int64(v * 100)})
		}
		return s
	}
	r := &results{
		Mode: "full", Started: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC), Seconds: 600, Runs: 3, RunSteps: 20,
		Machine: machine{CPU: "Test CPU", Cores: 2, Memory: "24 GiB", Kernel: "Linux 6.1", OS: "Debian 12", FS: "ext2/ext3", Go: "go1.26"},
		Tools: []toolInfo{{Name: "builder", Version: "builder abc123"}, {Name: "buildah", Version: "buildah version 1.28.2, overlay driver, --isolation chroot",
			NotApplicable: []string{"cache-to-min"}},
			{Name: "buildkit", Version: "buildctl v0.34.2", DaemonRSS: true, NotApplicable: freshScenarios}},
		Workloads: []workloadResult{
			{Name: "meta", Desc: "metadata", Files: 1, Bytes: 300, Samples: map[string]map[string][]sample{
				"pull": {"builder": mk(20, 30, 25), "buildah": mk(200, 210, 190)},
				"cold": {"builder": mk(100, 120, 110), "buildah": mk(900, 1000, 950), "buildkit": mk(300, 310, 320)},
				"warm": {"builder": mk(7, 8, 9), "buildah": mk(500, 520, 510), "buildkit": mk(60, 61, 62)},
			}},
			{Name: "run-true", Desc: "RUN true", Files: 1, Bytes: 200, Samples: map[string]map[string][]sample{
				"cold":       {"builder": mk(300, 320, 310), "buildah": mk(5000)},
				"warm":       {"builder": mk(7, 8, 9), "buildah": mk(500)},
				"one-change": {"builder": mk(17, 18, 19), "buildah": mk(550)},
			}},
			{Name: "copy-big", Desc: "big", Files: 20001, Bytes: 500 << 20, Samples: map[string]map[string][]sample{
				"cold":         {"builder": mk(4000, 4200, 4100), "buildah": mk(9000, 9500, 9200)},
				"warm":         {"builder": mk(120, 130, 125), "buildah": mk(3000, 3100, 3050)},
				"one-change":   {"builder": mk(1800, 2100, 1900)},
				"cache-to-min": {"builder": mk(4300, 4400, 4350)},
				"cache-to-max": {"builder": mk(4600, 4700, 4650), "buildah": mk(12000, 12500, 12200)},
				"fresh-pushed": {"builder": mk(400, 420, 410), "buildah": mk(8000, 8100, 8050)},
				"fresh-kept":   {"builder": mk(900, 950, 920), "buildah": mk(7000, 7100, 7050)},
				"fresh-change": {"builder": mk(4000, 4100, 4050), "buildah": mk(15000)},
			}, SkopeoCopy: mk(800, 820, 810), Find: mk(60, 62, 61),
				Errors: map[string]string{"buildah": "one-change: exit status 1\nmore", "buildah fresh-runner": "fresh-change: exit status 125\nmore"}},
			{Name: "multistage", Desc: "stages", Files: 21, Bytes: 90000, Samples: map[string]map[string][]sample{
				"cold":         {"builder": mk(400, 410, 420)},
				"cache-to-max": {"builder": mk(430, 440, 450)},
				"fresh-kept":   {"builder": mk(60, 70, 80)},
			}},
		},
		Floor:   &floorResult{CatMS: 300, SHA256MS: 1500, TarGzipMS: 3000, FloorMS: 3500},
		Startup: &startupResult{TrivialMS: 2.5, HelpMS: 6},
	}
	r.Workloads = append(r.Workloads,
		workloadResult{Name: "small-files", Desc: "small", Files: 50001, Bytes: 128 << 20, Samples: map[string]map[string][]sample{
			"cold": {"builder": mk(1400, 1500, 1450)}, "warm": {"builder": mk(110, 115, 112)},
		}, Find: mk(100, 95, 98), WarmPairs: [][2]float64{{105, 100}, {104, 99}, {110, 104}}},
		workloadResult{Name: "huge", Desc: "10 GB", Files: 10005, Bytes: 10 << 30, Samples: map[string]map[string][]sample{
			"cold": {"builder": mk(60000, 61000, 62000)}, "warm": {"builder": mk(40, 41, 42)}, "export": {"builder": mk(9000, 9100, 9200)},
		}, Find: mk(30, 31, 32), OnePass: mk(50000)})
	r.judge()
	check := func(name, got string) {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./bench -run TestReportGolden -update writes it)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs; got:\n%s", name, got)
		}
	}
	check("report-full.golden.md", r.markdown())
	missed := strings.Join(r.missed(), "\n")
	for _, want := range []string{"copy-big warm", "copy-big cold: peak RSS", "copy-big cold: --cache-to mode=max adds under 10%",
		"small-files cold: peak RSS under 48 MB", "huge cold: peak RSS under 64 MB", "copy-big warm: within 1.2x", "`builder --help`"} {
		if !strings.Contains(missed, want) {
			t.Errorf("the full fixture misses %q, but missed() is:\n%s", want, missed)
		}
	}
	for _, holds := range []string{"copy-big fresh runner, fully cached, pushed", "copy-big fresh runner, fully cached, kept", "multistage cold: --cache-to",
		"meta warm (fully cached)", "small-files warm: within", "huge cold: within 1.3x"} {
		if strings.Contains(missed, holds) {
			t.Errorf("the full fixture meets %q, but missed() is:\n%s", holds, missed)
		}
	}
	r.Mode = "quick"
	r.judge()
	if len(r.missed()) != 0 {
		t.Errorf("quick runs judge no target, but missed() = %v", r.missed())
	}
	check("report-quick.golden.md", r.markdown())
}

// TestPairRatio: the judged ratio of figures measured in alternation is
// the median of the pairs' ratios, not the ratio of the medians.
func TestPairRatio(t *testing.T) {
	cases := []struct {
		pairs   [][2]float64
		a, b, x float64
	}{
		{[][2]float64{{10, 5}}, 10, 5, 2},
		// medians 12 and 6 (ratio 2), but each pair is 1.2, 3 or 1.5
		{[][2]float64{{12, 10}, {15, 5}, {9, 6}}, 12, 6, 1.5},
		{[][2]float64{{4, 2}, {6, 2}}, 5, 2, 2.5},
		{[][2]float64{{4, 0}, {6, 3}}, 5, 1.5, 2}, // a floor of 0 has no ratio
	}
	for _, tc := range cases {
		a, b, x := pairRatio(tc.pairs)
		if a != tc.a || b != tc.b || x != tc.x {
			t.Errorf("pairRatio(%v) = %v, %v, %v; want %v, %v, %v", tc.pairs, a, b, x, tc.a, tc.b, tc.x)
		}
	}
	s := &startupResult{TrivialMS: 2, HelpMS: 5, Samples: [][2]float64{{2, 3}, {1, 4}, {2, 5}}}
	if help, triv, x := s.ratio(); help != 4 || triv != 2 || x != 2.5 {
		t.Errorf("startup ratio = %v, %v, %v; want 4, 2, 2.5 (help over trivial, pair by pair)", help, triv, x)
	}
}

func TestCheckPeerOutput(t *testing.T) {
	buildahCold := "STEP 1/3: FROM r/busybox\nSTEP 2/3: ENV A=1\n--> f46172da066\nSTEP 3/3: RUN true\nCOMMIT x:v1\n--> a0fe0a07fa9\n"
	buildahWarm := "STEP 1/3: FROM r/busybox\nSTEP 2/3: ENV A=1\n--> Using cache f461\n--> f46172da066\nSTEP 3/3: RUN true\n--> Using cache a0fe\nCOMMIT x:v1\n"
	bkCold := "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n#4 [1/3] FROM r/busybox@sha256:ab\n#4 CACHED\n" +
		"#5 [2/3] RUN true\n#5 DONE 0.1s\n#6 [gen 3/3] COPY src/ /src/\n#6 CACHED\n"
	bkWarm := "#4 [1/3] FROM r/busybox@sha256:ab\n#4 DONE 0.0s\n#5 [2/3] RUN true\n#5 CACHED\n#6 [gen 3/3] COPY src/ /src/\n#6 CACHED\n"
	for _, tc := range []struct {
		name      string
		check     func(out, want string) error
		out, want string
		ok        bool
	}{
		{"buildah cold miss", checkBuildah, buildahCold, "miss", true},
		{"buildah cold hit", checkBuildah, buildahCold, "hit", false},
		{"buildah warm hit", checkBuildah, buildahWarm, "hit", true},
		{"buildah warm miss", checkBuildah, buildahWarm, "miss", false},
		{"buildah no steps", checkBuildah, "error: something\n", "", false},
		{"buildah multi-stage hit", checkBuildah, "[1/2] STEP 1/2: FROM b AS gen\n[1/2] STEP 2/2: RUN true\n--> Using cache 1\n" +
			"[2/2] STEP 1/2: FROM b\n[2/2] STEP 2/2: COPY --from=gen /a /a\n--> Using cache 2\n", "hit", true},
		{"buildah multi-stage miss", checkBuildah, "[1/2] STEP 1/2: FROM b AS gen\n[1/2] STEP 2/2: RUN true\n--> 1\n" +
			"[2/2] STEP 1/2: FROM b\n[2/2] STEP 2/2: COPY --from=gen /a /a\n--> Using cache 2\n", "hit", false},
		{"buildkit cold miss", checkBuildkit, bkCold, "miss", true},
		{"buildkit cold hit", checkBuildkit, bkCold, "hit", false},
		{"buildkit warm hit", checkBuildkit, bkWarm, "hit", true},
		{"buildkit warm miss", checkBuildkit, bkWarm, "miss", false},
	} {
		if err := tc.check(tc.out, tc.want); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

// TestJudgeWithoutPeer: a full run without buildah still judges the
// absolute targets, and says why the ratios are not judged.
func TestJudgeWithoutPeer(t *testing.T) {
	one := func(v float64) []sample { return []sample{{WallMS: v, MaxRSSKB: 1024}} }
	r := &results{Mode: "full", RunSteps: 20, Workloads: []workloadResult{
		{Name: "meta", Samples: map[string]map[string][]sample{"cold": {"builder": one(100)}, "warm": {"builder": one(8)}}},
		{Name: "small-files", Samples: map[string]map[string][]sample{"cold": {"builder": one(1000)}, "warm": {"builder": one(80)}}},
	}}
	r.judge()
	status := map[string]string{}
	for _, tr := range r.Targets {
		status[tr.Target] = tr.Status
	}
	// By the start of the target's text: a workload has several targets.
	want := map[string]string{"meta warm:": "holds", "small-files warm:": "MISSED", "small-files cold: at least": peerMissingNote}
	for k, v := range want {
		found := false
		for target, st := range status {
			if strings.HasPrefix(target, k) {
				found = true
				if st != v {
					t.Errorf("%s: status %q, want %q (all: %v)", target, st, v, status)
				}
			}
		}
		if !found {
			t.Errorf("no target %q... (all: %v)", k, status)
		}
	}
}

// TestCacheLines reads builder's cache summary lines.
func TestCacheLines(t *testing.T) {
	const ref = "127.0.0.1:5000/cache/x:cache"
	out := "#2 [stage-0 2/2] COPY . /data/ DONE 1.2s\ncache: exported 1 records to registry " + ref + "; uploaded 1 layers (3.1MB in all)\n"
	if n, err := uploadedBlobs(out, ref); n != 1 || err != nil {
		t.Errorf("uploadedBlobs = %d, %v; want 1", n, err)
	}
	streamed := strings.Replace(out, "(3.1MB in all)", "(1.2kB in all); 2 layers (3.1MB) streamed during the build", 1)
	if n, err := uploadedBlobs(streamed, ref); n != 3 || err != nil {
		t.Errorf("uploadedBlobs(streamed) = %d, %v; want 1 uploaded + 2 streamed", n, err)
	}
	for _, bad := range []string{"", strings.Replace(out, ref, "other:cache", 1), strings.Replace(out, "exported 1", "exported 0", 1)} {
		if _, err := uploadedBlobs(bad, ref); err == nil {
			t.Errorf("uploadedBlobs(%q): no error", bad)
		}
	}
	in := "cache: imported 3 records from registry " + ref + "; fetched 2 layers (1.6kB in all)\nnot kept in the store: ...\n"
	if n, err := fetchedBlobs(in, ref); n != 2 || err != nil {
		t.Errorf("fetchedBlobs = %d, %v; want 2", n, err)
	}
	for _, bad := range []string{"", strings.Replace(in, "imported 3", "imported 0", 1), strings.Replace(in, ref, "other:cache", 1)} {
		if _, err := fetchedBlobs(bad, ref); err == nil {
			t.Errorf("fetchedBlobs(%q): no error", bad)
		}
	}
}

func TestFreshFor(t *testing.T) {
	for _, tc := range []struct {
		name, opt  string
		full, want bool
	}{
		{"meta", "", true, true}, {"meta", "", false, false}, {freshQuick, "", false, true},
		{"meta", "all", false, true}, {freshQuick, "none", true, false},
		{"meta", "apt,meta", false, true}, {"apt", "meta", true, false},
	} {
		if got := freshFor(tc.name, tc.full, tc.opt); got != tc.want {
			t.Errorf("freshFor(%q, %v, %q) = %v", tc.name, tc.full, tc.opt, got)
		}
	}
	if failKey("buildah", "warm") == failKey("buildah", "fresh-kept") {
		t.Error("a peer's fresh-runner failure would hide its other scenarios")
	}
}

// TestChangerTwice: the context's stamp is away during each change, also
// after an undo (one-change, then fresh-change).
func TestChangerTwice(t *testing.T) {
	root := t.TempDir()
	ctx := filepath.Join(root, "w")
	if err := os.MkdirAll(ctx, 0o755); err != nil {
		t.Fatal(err)
	}
	stamp := stampPath(root, "w")
	for name, data := range map[string]string{stamp: "stamp\n", filepath.Join(ctx, "f"): "orig\n"} {
		if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := oneChange(workload{name: "w", changeFile: "f"}, ctx, "b", quickSizes)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := c.change(round + 1); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(stamp); !os.IsNotExist(err) {
			t.Errorf("round %d: the stamp is there while the context is changed (%v)", round, err)
		}
		if err := c.undo(); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(stamp); string(got) != "stamp\n" {
			t.Errorf("round %d: stamp after undo = %q", round, got)
		}
		if got, _ := os.ReadFile(filepath.Join(ctx, "f")); string(got) != "orig\n" {
			t.Errorf("round %d: file after undo = %q", round, got)
		}
	}
}
