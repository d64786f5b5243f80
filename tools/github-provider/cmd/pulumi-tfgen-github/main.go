// Command pulumi-tfgen-github generates the Pulumi schema of the GitHub provider (see ../../provider).
//
//	pulumi-tfgen-github schema --out DIR --skip-examples
//
// writes DIR/schema.json and DIR/bridge-metadata.json (the bridge's files) and DIR/schema-embed.json
// (schema.json with the package version, which the runtime plugin embeds). TFGEN_UPSTREAM_DIR, when
// set, is the directory of the Terraform provider's module (its docs/ feed the descriptions).
//
// The directory name matters: the bridge treats a binary whose main package path contains
// "pulumi-tfgen" as the build-time generator.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfgen"
	"github.com/spf13/afero"

	"github.com/mlops-ci/mlops-ci/tools/github-provider/provider"
)

func main() {
	info := provider.Info([]byte("{}"))
	info.UpstreamRepoPath = os.Getenv("TFGEN_UPSTREAM_DIR")
	tfgen.MainWithCustomGenerate(provider.Name, provider.Version, info, func(opts tfgen.GeneratorOptions) error {
		g, err := tfgen.NewGenerator(opts)
		if err != nil {
			return err
		}
		res, err := g.Generate(context.Background())
		if err != nil || opts.Language != tfgen.Schema || opts.Root == nil {
			return err
		}
		spec := res.PackageSpec
		spec.Version = provider.Version
		b, err := json.Marshal(spec)
		if err != nil {
			return err
		}
		return afero.WriteFile(opts.Root, "schema-embed.json", b, 0o644)
	})
}
