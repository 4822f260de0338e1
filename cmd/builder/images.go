package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/builderdev/builder/oci"
	"github.com/spf13/cobra"
)

func newImagesCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images of the store",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			imgs, err := b.Store.Images()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tIMAGE ID\tMANIFEST\tLAYERS\tSIZE")
			for _, im := range imgs {
				var size int64
				for _, l := range im.Manifest.Layers {
					size += l.Size
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", im.Name, short(im.Manifest.Config.Digest.Encoded()),
					short(im.Descriptor.Digest.Encoded()), len(im.Manifest.Layers), humanSize(size))
			}
			return tw.Flush()
		},
	}
}

func short(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}

func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}

func newInspectCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect IMAGE",
		Short: "Print an image's manifest and config as JSON",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			im, err := b.Store.Resolve(args[0])
			if err != nil {
				return err
			}
			var cfg json.RawMessage
			if err := b.Store.GetJSON(im.Manifest.Config.Digest, &cfg); err != nil {
				return err
			}
			out := struct {
				Name     string          `json:"name,omitempty"`
				Digest   string          `json:"digest"`
				ID       string          `json:"id"`
				Manifest any             `json:"manifest"`
				Config   json.RawMessage `json:"config"`
			}{im.Name, im.Descriptor.Digest.String(), im.Manifest.Config.Digest.String(), im.Manifest, cfg}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(out)
		},
	}
}

func newTagCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "tag SOURCE TARGET",
		Short: "Give an image another name",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			im, err := b.Store.Resolve(args[0])
			if err != nil {
				return err
			}
			name, err := oci.NormalizeRef(args[1])
			if err != nil {
				return usagef("invalid tag %q: %v", args[1], err)
			}
			return b.Store.Tag(name, im.Descriptor)
		},
	}
}

func newRmiCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove image names (blobs stay until prune)",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			unlock, err := b.Store.Lock(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer unlock()
			for _, a := range args {
				name, err := oci.NormalizeRef(a)
				if err != nil {
					return usagef("invalid image name %q: %v", a, err)
				}
				if err := b.Store.Untag(name); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "untagged %s\n", name)
			}
			return nil
		},
	}
}

func newSaveCmd(g *globalFlags) *cobra.Command {
	var out, format string
	cmd := &cobra.Command{
		Use:   "save IMAGE... -o FILE",
		Short: "Write images to an OCI or docker-archive tar",
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usagef("save needs -o FILE")
			}
			var f oci.Format
			switch format {
			case "oci":
				f = oci.FormatOCI
			case "docker":
				f = oci.FormatDocker
			case "oci-layout":
				f = oci.FormatOCILayout
			default:
				return usagef("--format must be oci, docker or oci-layout")
			}
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			var imgs []*oci.Image
			for _, a := range args {
				im, err := b.Store.Resolve(a)
				if err != nil {
					return err
				}
				imgs = append(imgs, im)
			}
			return b.Store.Export(cmd.Context(), out, f, imgs)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "output file")
	cmd.Flags().StringVar(&format, "format", "oci", "oci, docker or oci-layout")
	return cmd
}

func newLoadCmd(g *globalFlags) *cobra.Command {
	var in string
	cmd := &cobra.Command{
		Use:   "load -i FILE",
		Short: "Import an OCI tar, OCI layout dir or docker-archive tar",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return usagef("load needs -i FILE")
			}
			if _, err := os.Stat(in); errors.Is(err, fs.ErrNotExist) {
				return usagef("load: %s does not exist", in)
			}
			b, err := openBuilder(cmd, g)
			if err != nil {
				return err
			}
			names, err := b.Store.Load(cmd.Context(), in)
			if err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintf(cmd.OutOrStdout(), "loaded %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "input file or directory")
	return cmd
}
