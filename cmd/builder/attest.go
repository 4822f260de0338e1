package main

import (
	"bytes"
	"encoding/json"

	"github.com/builderdev/builder/client"
	"github.com/spf13/cobra"
)

// attestFlags apply --provenance and --annotation. As buildx: a build that
// pushes gets a mode=min provenance unless --provenance says otherwise.
func attestFlags(opts *client.BuildOptions, prov string, provSet bool, anns []string) error {
	for _, a := range anns {
		as, err := client.ParseAnnotation(a)
		if err != nil {
			return err
		}
		opts.Annotations = append(opts.Annotations, as...)
	}
	if !provSet {
		if pushes(opts) {
			opts.Provenance = &client.Provenance{Mode: "min"}
		}
		return nil
	}
	p, err := client.ParseProvenance(prov)
	if err != nil {
		return err
	}
	opts.Provenance = p
	return nil
}

// pushes reports whether the build pushes its image to a registry.
func pushes(opts *client.BuildOptions) bool {
	if opts.Push {
		return true
	}
	for _, o := range opts.Outputs {
		if o.Type == "image" && o.Push {
			return true
		}
	}
	return false
}

// printProvenance prints the provenance statement of an image, indented.
func printProvenance(cmd *cobra.Command, c *client.Client, ref string) error {
	raw, err := c.Provenance(cmd.Context(), ref)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = cmd.OutOrStdout().Write(b.Bytes())
	return err
}
