package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/builderdev/builder/client"
)

// stepCounter counts the steps and the cache hits a build reports.
type stepCounter struct {
	client.Reporter
	steps, hits atomic.Int64
}

func (c *stepCounter) Report(e client.Event) {
	if e.Kind == client.StepDone && e.Err == nil {
		c.steps.Add(1)
		if e.Cached {
			c.hits.Add(1)
		}
	}
	c.Reporter.Report(e)
}

// writeMetadata writes --metadata-file as docker buildx does (its keys),
// plus builder's own: steps, cache hits, duration.
func writeMetadata(path string, res *client.BuildResult, n *stepCounter, d time.Duration) error {
	m := map[string]any{
		"containerimage.digest":        res.ManifestDigest.String(),
		"containerimage.config.digest": res.ImageID.String(),
		"containerimage.descriptor": map[string]any{
			"mediaType": res.Manifest.MediaType, "digest": res.ManifestDigest.String(), "size": res.Manifest.Size,
		},
		"builder.steps":       n.steps.Load(),
		"builder.cache.hits":  n.hits.Load(),
		"builder.duration.ms": d.Milliseconds(),
	}
	switch {
	case len(res.Platforms) > 0:
		// An image index (as buildx): no config of its own.
		delete(m, "containerimage.config.digest")
	case res.Index != nil:
		// As buildx: with attestations the image is the index.
		m["containerimage.digest"] = res.Index.Digest.String()
		m["containerimage.descriptor"] = map[string]any{"mediaType": res.Index.MediaType, "digest": res.Index.Digest.String(), "size": res.Index.Size}
	}
	if len(res.Tags) > 0 {
		m["image.name"] = strings.Join(res.Tags, ",")
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write metadata file: %w", err)
	}
	return nil
}
