package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ork-go/ork/cmd/ork/internal/serve"
	"github.com/ork-go/ork/pkg/bundle"
	"github.com/ork-go/ork/pkg/client"
	"github.com/ork-go/ork/pkg/httpapi"
	"github.com/ork-go/ork/pkg/store"
	"github.com/ork-go/ork/pkg/workflow"
)

// registryOptions are the flags of the workflows commands: a server, else a cluster, else this
// folder's registry.
type registryOptions struct {
	api     apiFlags
	stack   stackFlags
	db      string
	json    bool
	verbose bool
	bundle  bundleFlag
}

func (o *registryOptions) flags(cmd *cobra.Command) {
	addAPIFlags(cmd, &o.api)
	addNATSFlags(cmd, &o.stack.nats, "the cluster's NATS URL, when there is no server")
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON")
}

// bundleFlag is --bundle: whether a workflow's folder travels with it as a bundle, or is expected
// at the same path on the executors. Unset, it is on for a remote server or a cluster and off for
// this machine's server and registry.
type bundleFlag struct {
	on  bool
	cmd *cobra.Command
}

func addBundleFlag(cmd *cobra.Command, b *bundleFlag) {
	b.cmd = cmd
	cmd.Flags().BoolVar(&b.on, "bundle", false, "pack the workflow's folder and send it along, for executors that do not share this disk (default: on for --api and --nats, off for this folder's server)")
}

// want resolves the flag: its value when given, else remote.
func (b *bundleFlag) want(remote bool) bool {
	if b.cmd != nil && b.cmd.Flags().Changed("bundle") {
		return b.on
	}
	return remote
}

// registry is where workflows are registered: a server's API, or a registry bucket reached over
// NATS (a cluster's, or this folder's embedded stack).
type registry interface {
	apply(ctx context.Context, file string, plan *workflow.Plan) (httpapi.WorkflowDetail, string, error) // what: registered, updated, unchanged
	list(ctx context.Context) ([]httpapi.WorkflowSummary, error)
	show(ctx context.Context, name string) (httpapi.WorkflowDetail, error)
	remove(ctx context.Context, name string) error
	where() string
	scheduleRegistry
}

// openRegistry picks the registry, in the order of registryOptions.
func (o *registryOptions) open(ctx context.Context) (registry, func(), error) {
	api, info, err := o.api.server(ctx)
	if err != nil {
		return nil, nil, err
	}
	if api != nil {
		// A remote server, or one whose executors may be elsewhere (--nats-listen), gets the folder along.
		return &apiRegistry{api: api, info: info, bundle: o.bundle.want(info == nil || info.NATS != "")}, func() {}, nil
	}
	b, st, where, closeFn, err := o.stack.openBus(ctx, o.verbose)
	if err != nil {
		return nil, nil, err
	}
	return &busRegistry{cl: client.New(b), st: st, at: where, bundle: o.bundle.want(st == nil)}, closeFn, nil
}

type apiRegistry struct {
	api    *httpapi.Client
	info   *serve.Info
	bundle bool // send the folder as a bundle
}

func (r *apiRegistry) where() string { return "the server at " + r.api.Base() }

func (r *apiRegistry) apply(ctx context.Context, file string, plan *workflow.Plan) (httpapi.WorkflowDetail, string, error) {
	yaml, err := os.ReadFile(file)
	if err != nil {
		return httpapi.WorkflowDetail{}, "", err
	}
	before, berr := r.api.Workflow(ctx, plan.Name)
	var d httpapi.WorkflowDetail
	var created bool
	if r.bundle {
		data, hash, err := bundle.Pack(plan.Dir, 0)
		if err != nil {
			return d, "", err
		}
		if err := r.api.PutBundle(ctx, data, hash); err != nil {
			return d, "", err
		}
		d, created, err = r.api.PutWorkflowBundled(ctx, plan.Name, yaml, hash, plan.Dir)
		if err != nil {
			return d, "", err
		}
	} else {
		dir, err := serverDir(r.info, filepath.Dir(file))
		if err != nil {
			return httpapi.WorkflowDetail{}, "", fmt.Errorf("%w; or send it along with --bundle", err)
		}
		if d, created, err = r.api.PutWorkflow(ctx, plan.Name, yaml, dir); err != nil {
			return d, "", err
		}
	}
	switch {
	case err != nil:
		return d, "", err
	case created:
		return d, "registered", nil
	case berr == nil && before.Revision == d.Revision:
		return d, "unchanged", nil
	}
	return d, "updated", nil
}

func (r *apiRegistry) list(ctx context.Context) ([]httpapi.WorkflowSummary, error) {
	return r.api.Workflows(ctx, "")
}

func (r *apiRegistry) show(ctx context.Context, name string) (httpapi.WorkflowDetail, error) {
	d, err := r.api.Workflow(ctx, name)
	if httpapi.IsProblem(err, "not-found") {
		return d, fmt.Errorf("no registered workflow %q on %s (ork workflows list shows them)", name, r.where())
	}
	return d, err
}

func (r *apiRegistry) remove(ctx context.Context, name string) error {
	err := r.api.DeleteWorkflow(ctx, name)
	if httpapi.IsProblem(err, "not-found") {
		return fmt.Errorf("no registered workflow %q on %s", name, r.where())
	}
	return err
}

type busRegistry struct {
	cl     *client.Client
	st     store.Store // this folder's database, whose workflows that ran are listed too; nil for a cluster
	at     string
	bundle bool // register the folder as a bundle
}

func (r *busRegistry) where() string { return r.at }

func (r *busRegistry) apply(ctx context.Context, file string, plan *workflow.Plan) (httpapi.WorkflowDetail, string, error) {
	source, err := os.ReadFile(file)
	if err != nil {
		return httpapi.WorkflowDetail{}, "", err
	}
	_, berr := r.cl.Workflow(ctx, plan.Name)
	if r.bundle {
		if plan, err = r.cl.Bundled(ctx, plan); err != nil {
			return httpapi.WorkflowDetail{}, "", err
		}
	}
	reg, changed, err := r.cl.Apply(ctx, client.ApplyParams{Plan: plan, By: "cli", Source: string(source)})
	if err != nil {
		return httpapi.WorkflowDetail{}, "", err
	}
	what := "unchanged"
	switch {
	case changed && errors.Is(berr, client.ErrNotRegistered):
		what = "registered"
	case changed:
		what = "updated"
	}
	return httpapi.DetailOf(reg), what, nil
}

func (r *busRegistry) list(ctx context.Context) ([]httpapi.WorkflowSummary, error) {
	regs, err := r.cl.Workflows(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]httpapi.WorkflowSummary, len(regs))
	seen := map[string]bool{}
	for i, reg := range regs {
		out[i] = httpapi.SummaryOf(reg)
		seen[reg.Plan.Name] = true
	}
	if r.st != nil {
		// The workflows that ran here without being registered (ork run FILE): listed, not registered.
		ran, err := r.st.WorkflowList(ctx, store.WorkflowListParams{})
		if err != nil {
			return nil, err
		}
		for _, w := range ran {
			if !seen[w.Name] {
				out = append(out, httpapi.WorkflowSummary{Name: w.Name, Description: w.Description, Version: w.CurrentHash,
					Schedule: w.Schedule, Params: []workflow.Param{}, AppliedBy: ""})
			}
		}
		slices.SortFunc(out, func(a, b httpapi.WorkflowSummary) int { return strings.Compare(a.Name, b.Name) })
	}
	return out, nil
}

func (r *busRegistry) show(ctx context.Context, name string) (httpapi.WorkflowDetail, error) {
	reg, err := r.cl.Workflow(ctx, name)
	if errors.Is(err, client.ErrNotRegistered) {
		return httpapi.WorkflowDetail{}, fmt.Errorf("no registered workflow %q in %s (ork workflows list shows them)", name, r.where())
	}
	if err != nil {
		return httpapi.WorkflowDetail{}, err
	}
	return httpapi.DetailOf(reg), nil
}

func (r *busRegistry) remove(ctx context.Context, name string) error {
	err := r.cl.Unregister(ctx, name)
	if errors.Is(err, client.ErrNotRegistered) {
		return fmt.Errorf("no registered workflow %q in %s", name, r.where())
	}
	return err
}

func newWorkflowsCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "workflows",
		Short: "Register workflows by name, list, show and delete them",
		Long: `Register workflows so that runs can be started by name (ork trigger NAME, the HTTP API, schedules).

Where: the server given by --api (or ORK_API_URL), else the ` + "`ork serve`" + ` running in this folder, else the
cluster given by --nats, else this folder's own registry (under .ork, the one ` + "`ork serve`" + ` uses when it
starts here). Without a subcommand it lists them.`,
		Example: `  ork workflows apply examples/        register every workflow of a folder
  ork workflows list
  ork workflows show typed_chain
  ork workflows delete typed_chain`,
		Args: rootArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return listWorkflows(cmd.Context(), cmd.OutOrStdout(), &o) },
	}
	o.flags(cmd)
	cmd.AddCommand(newWorkflowsApplyCmd(), newWorkflowsListCmd(), newWorkflowsShowCmd(), newWorkflowsDeleteCmd())
	return cmd
}

func newWorkflowsApplyCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "apply FILE|DIR...",
		Short: "Register workflow files (every *.yaml and *.yml of a folder), or update them",
		Long: `Register workflow files under their names, or replace the registered versions. Every file is
validated first: if any is invalid, nothing is registered and every error is printed. Applying an
unchanged file changes nothing.`,
		Args: minimumArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return applyWorkflows(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args, &o)
		},
	}
	o.flags(cmd)
	addBundleFlag(cmd, &o.bundle)
	return cmd
}

func newWorkflowsListCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the registered workflows",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return listWorkflows(cmd.Context(), cmd.OutOrStdout(), &o) },
	}
	o.flags(cmd)
	return cmd
}

func newWorkflowsShowCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a registered workflow: its version, parameters and tasks",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), &o, func(ctx context.Context, r registry) error {
				d, err := r.show(ctx, args[0])
				if err != nil {
					return err
				}
				if o.json {
					return writeJSON(cmd.OutOrStdout(), d)
				}
				printWorkflow(cmd.OutOrStdout(), d)
				return nil
			})
		},
	}
	o.flags(cmd)
	return cmd
}

func newWorkflowsDeleteCmd() *cobra.Command {
	var o registryOptions
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Remove a workflow from the registry (its runs stay)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withRegistry(cmd.Context(), &o, func(ctx context.Context, r registry) error {
				if err := r.remove(ctx, args[0]); err != nil {
					return err
				}
				_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted %s from %s\n", args[0], r.where())
				return err
			})
		},
	}
	o.flags(cmd)
	return cmd
}

func withRegistry(ctx context.Context, o *registryOptions, fn func(context.Context, registry) error) error {
	r, closeFn, err := o.open(ctx)
	if err != nil {
		return err
	}
	defer closeFn()
	return fn(ctx, r)
}

// workflowFiles expands the arguments: files as given, folders to their *.yaml and *.yml files.
func workflowFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, usageError(err)
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		var found []string
		for _, pat := range []string{"*.yaml", "*.yml"} {
			m, _ := filepath.Glob(filepath.Join(a, pat))
			found = append(found, m...)
		}
		if len(found) == 0 {
			return nil, usageError(fmt.Errorf("%s holds no *.yaml or *.yml file", a))
		}
		slices.Sort(found)
		files = append(files, found...)
	}
	return files, nil
}

func applyWorkflows(ctx context.Context, out, stderr io.Writer, args []string, o *registryOptions) error {
	files, err := workflowFiles(args)
	if err != nil {
		return err
	}
	plans := make([]*workflow.Plan, len(files))
	bad := 0
	byName := map[string]string{}
	for i, f := range files {
		if plans[i], err = workflow.Load(f); err != nil {
			bad++
			var list workflow.ErrorList
			if errors.As(err, &list) {
				for _, e := range list {
					fmt.Fprintln(stderr, e.Error())
				}
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", f, err)
			}
			continue
		}
		if prev, dup := byName[plans[i].Name]; dup {
			bad++
			fmt.Fprintf(stderr, "%s: named %q, as %s is\n", f, plans[i].Name, prev)
		}
		byName[plans[i].Name] = f
	}
	if bad > 0 {
		return &ExitError{Code: ExitCodeFailure, Err: fmt.Errorf("%s of %d invalid: nothing was registered", plural(bad, "file"), len(files))}
	}
	return withRegistry(ctx, o, func(ctx context.Context, r registry) error {
		var results []map[string]any
		for i, p := range plans {
			d, what, err := r.apply(ctx, files[i], p)
			if err != nil {
				return fmt.Errorf("%s: %w", files[i], err)
			}
			if o.json {
				results = append(results, map[string]any{"file": files[i], "result": what, "workflow": d.WorkflowSummary})
				continue
			}
			fmt.Fprintf(out, "%-10s %s (version %s, revision %d)\n", what, p.Name, shortHash(d.Version), d.Revision)
		}
		if o.json {
			return writeJSON(out, results)
		}
		_, err := fmt.Fprintf(out, "in %s\n", r.where())
		return err
	})
}

func listWorkflows(ctx context.Context, out io.Writer, o *registryOptions) error {
	return withRegistry(ctx, o, func(ctx context.Context, r registry) error {
		wfs, err := r.list(ctx)
		if err != nil {
			return err
		}
		if o.json {
			if wfs == nil {
				wfs = []httpapi.WorkflowSummary{}
			}
			return writeJSON(out, wfs)
		}
		if len(wfs) == 0 {
			_, err := fmt.Fprintf(out, "no workflow is registered in %s (ork workflows apply FILE registers one)\n", r.where())
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "WORKFLOW\tVERSION\tTASKS\tPARAMS\tSCHEDULE\tAPPLIED\tDESCRIPTION")
		for _, w := range wfs {
			names := make([]string, len(w.Params))
			for i, p := range w.Params {
				names[i] = p.Name
			}
			applied := "(not registered: ran from a file)"
			tasks := "-"
			if w.Revision > 0 {
				applied, tasks = w.AppliedAt.Local().Format(time.DateTime), fmt.Sprint(w.TaskCount)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", w.Name, shortHash(w.Version), tasks, orDash(strings.Join(names, ",")),
				orDash(w.Schedule), applied, firstLine(w.Description))
		}
		return tw.Flush()
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printWorkflow shows one registered workflow.
func printWorkflow(out io.Writer, d httpapi.WorkflowDetail) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "workflow\t%s\n", d.Name)
	if d.Description != "" {
		fmt.Fprintf(tw, "description\t%s\n", d.Description)
	}
	fmt.Fprintf(tw, "version\t%s (revision %d)\n", d.Version, d.Revision)
	fmt.Fprintf(tw, "applied\t%s by %s\n", d.AppliedAt.Local().Format(time.DateTime), orDash(d.AppliedBy))
	fmt.Fprintf(tw, "folder\t%s\n", d.Dir)
	fmt.Fprintf(tw, "schedule\t%s\n", orDash(d.Schedule))
	_ = tw.Flush()
	if len(d.Params) > 0 {
		fmt.Fprintln(out, "\nPARAM  TYPE  DEFAULT  DESCRIPTION")
		tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, p := range d.Params {
			def := "(required)"
			if p.Default != nil {
				def = string(p.Default)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Type, def, p.Description)
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(out, "\nTASK  EXECUTOR  DEPENDS ON")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, t := range d.DAG {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, t.Executor, orDash(strings.Join(t.DependsOn, ", ")))
	}
	_ = tw.Flush()
}
