package executor

import (
	"testing"

	"github.com/builderdev/builder/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestScratchConfigJSON checks the config of a FROM scratch stage that sets
// nothing against BuildKit's emptyImage (dockerfile2llb/image.go) as its
// exporter writes it (patchImageConfig: sorted top-level keys, "history"
// and "diff_ids" null when empty). Expected JSON written from the source.
func TestScratchConfigJSON(t *testing.T) {
	cases := []struct {
		plat ocispec.Platform
		want string
	}{
		{ocispec.Platform{OS: "linux", Architecture: "arm", Variant: "v7"},
			`{"architecture":"arm","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"},` +
				`"history":null,"os":"linux","rootfs":{"type":"layers","diff_ids":null},"variant":"v7"}`},
		{ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"},
			`{"architecture":"amd64","config":{"WorkingDir":"/"},"history":null,"os":"windows","os.version":"10.0.20348.1",` +
				`"rootfs":{"type":"layers","diff_ids":null}}`},
	}
	for _, c := range cases {
		data, err := oci.ConfigJSON(scratchImage(c.plat))
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != c.want {
			t.Errorf("%v:\n got %s\nwant %s", c.plat, data, c.want)
		}
	}
}
