// Command ork is the Ork command line: validate and run workflows, inspect runs, manage the database.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ork-go/ork/cmd/ork/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx)
	stop()
	os.Exit(code)
}
