package workflow

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, hang or allocate without bound, and that whatever
// it accepts is a plan that passes Validate. The seed corpus is every test and example workflow, so
// it runs in every `go test`.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*/*.yaml", "../../examples/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		plan, err := Parse("fuzz.yaml", data, dir)
		if err != nil {
			if plan != nil {
				t.Fatal("Parse returned a plan along with errors")
			}
			return
		}
		if err := plan.Validate(); err != nil {
			t.Fatalf("Parse accepted a plan that Validate rejects: %v", err)
		}
	})
}
