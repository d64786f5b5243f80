// Command pulumi-resource-github is the Pulumi resource plugin for GitHub, bridged from the Terraform
// provider (see ../../provider).
//
// schema-embed.json and bridge-metadata.json are not in the repository: build.sh generates them with
// pulumi-tfgen-github into the cache and passes them to `go build -overlay`. The directory name
// matters: the bridge treats a binary whose main package path contains "pulumi-resource" as the
// runtime plugin (it then reads the auto-settings from the metadata instead of recomputing them).
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"

	"github.com/mlops-ci/mlops-ci/tools/github-provider/provider"
)

var (
	//go:embed schema-embed.json
	schema []byte
	//go:embed bridge-metadata.json
	metadata []byte
)

func main() {
	tfbridge.Main(provider.Name, provider.Version, provider.Info(metadata), schema)
}
