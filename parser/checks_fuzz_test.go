package parser

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// FuzzCheck runs the build checks over arbitrary Dockerfiles, every stage
// on a known base with ONBUILD triggers and a .dockerignore: no panic, no
// check that takes long (the expansion bounds hold in the checks too).
func FuzzCheck(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.Dockerfile")
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	var bomb strings.Builder
	bomb.WriteString("ARG a0=x\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&bomb, "ARG a%d=${a%d}${a%d}\n", i, i-1, i-1)
	}
	bomb.WriteString("FROM busybox:${a40}\nARG b0=y\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&bomb, "ENV b%d=${b%d}${b%d}\nCOPY $b%d /\n", i, i-1, i-1, i)
	}
	f.Add([]byte(bomb.String()))
	f.Add([]byte("# check=error=true;experimental=all\nFROM --platform=$TARGETPLATFORM a AS Scratch\nexpose 1:2/TCP\nFROM scratch\nONBUILD COPY $X /\nFROM 1\n"))
	f.Fuzz(func(t *testing.T, dockerfile []byte) {
		df, err := Parse(strings.NewReader(string(dockerfile)), "Dockerfile")
		if err != nil {
			return
		}
		bases := map[int]BaseImage{}
		for i := range df.Stages {
			bases[i] = BaseImage{Env: []string{"A=1"}, OnBuild: []string{"ENV B 2", "COPY $A$C /"}, Platform: hostPlatform()}
		}
		// Bounded work, measured as memory (a time limit would fail on a
		// busy machine or under -race): a bomb of doubling variables must
		// stop at the expansion bounds.
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _ = df.Check(CheckOptions{Bases: bases, Ignore: []string{"*.txt", "secret"}})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > checkAllocLimit {
			t.Errorf("checks allocated %d MiB", alloc>>20)
		}
	})
}

// checkAllocLimit bounds what one Check may allocate in FuzzCheck (the
// doubling bomb seed takes about 120 MiB).
const checkAllocLimit = 512 << 20
