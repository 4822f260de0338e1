package testutil

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// childRegistries returns the PIDs of docker-registry processes whose parent
// is this test process.
func childRegistries(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		fields := strings.Fields(s[end+1:])
		if s[open+1:end] != "docker-registry" || len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		pids = append(pids, pid)
	}
	return pids
}

func TestStartRegistry(t *testing.T) {
	var addr string
	var pids []int
	t.Run("serve", func(t *testing.T) {
		addr = StartRegistry(t)
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/ = %s", resp.Status)
		}
		pids = childRegistries(t)
		if len(pids) != 1 {
			t.Fatalf("found registry children %v, want one", pids)
		}
	})
	if t.Failed() {
		return
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pids[0])); !os.IsNotExist(err) {
		t.Errorf("registry pid %d still exists after cleanup: %v", pids[0], err)
	}
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after cleanup", addr)
	}
}

func TestRegistryPushBusybox(t *testing.T) {
	requireBusybox(t)
	skopeo := requireTool(t, "skopeo")
	addr := StartRegistry(t)
	archive := writeBusybox(t, BusyboxOptions{})
	ref := "docker://" + addr + "/library/busybox:latest"
	run(t, skopeo, "copy", "--quiet", "--dest-tls-verify=false", "oci-archive:"+archive, ref)

	var index ocispec.Index
	if err := json.Unmarshal(readArchive(t, archive)["index.json"], &index); err != nil {
		t.Fatal(err)
	}
	var info struct{ Digest digest.Digest }
	if err := json.Unmarshal([]byte(run(t, skopeo, "inspect", "--tls-verify=false", ref)), &info); err != nil {
		t.Fatal(err)
	}
	if want := index.Manifests[0].Digest; info.Digest != want {
		t.Errorf("pushed manifest digest = %s, want %s", info.Digest, want)
	}
}
