// act-artifact-server: act's own artifact server (github.com/nektos/act/pkg/artifacts, the code
// `act --artifact-server-path` runs inside the act process) as a process of its own. With it, a
// workflow run under act can store artifacts without act putting ACTIONS_RUNTIME_TOKEN and
// ACTIONS_RESULTS_URL into every step's environment: GitHub's runner gives them to actions only
// (actions/runner NodeScriptActionHandler), and the runner of localcloud/actions does the same.
//
//	act-artifact-server -path DIR -addr 127.0.0.1 -port PORT
//
// Serves until SIGTERM or SIGINT; exits non-zero if the port cannot be bound.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nektos/act/pkg/artifacts"
)

func main() {
	path := flag.String("path", "", "directory the artifacts are stored in (required)")
	addr := flag.String("addr", "127.0.0.1", "address to listen on")
	port := flag.String("port", "", "port to listen on (required)")
	flag.Parse()
	if *path == "" || *port == "" {
		fmt.Fprintln(os.Stderr, "act-artifact-server: -path and -port are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cancel := artifacts.Serve(ctx, *path, *addr, *port)
	<-ctx.Done()
	cancel()
}
