package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	yamlv3 "sigs.k8s.io/yaml/goyaml.v3"
)

// checkDocs checks that every value in a values.yaml is documented: a
// "# -- what it does" comment above it or above one of its parents (a
// documented map, such as resources, is documented as a whole), and a row
// "| `path` |" in the README's table of values. It returns the problems and
// the number of documented values.
func checkDocs(valuesFile, readmeFile string) ([]string, int, error) {
	if valuesFile == "" || readmeFile == "" {
		return nil, 0, errors.New("-values and -readme go together")
	}
	b, err := os.ReadFile(valuesFile)
	if err != nil {
		return nil, 0, err
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		return nil, 0, err
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(b, &doc); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", valuesFile, err)
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yamlv3.MappingNode {
		return nil, 0, fmt.Errorf("%s: not a map of values", valuesFile)
	}
	var problems []string
	documented := 0
	var walk func(m *yamlv3.Node, prefix string)
	walk = func(m *yamlv3.Node, prefix string) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := m.Content[i], m.Content[i+1]
			path := prefix + key.Value
			if strings.Contains(key.HeadComment, "# -- ") {
				documented++
				if !strings.Contains(string(readme), "| `"+path+"` |") {
					problems = append(problems, fmt.Sprintf("%s: value %s has no row in the table of values", readmeFile, path))
				}
				continue
			}
			if val.Kind == yamlv3.MappingNode && len(val.Content) > 0 {
				walk(val, path+".")
				continue
			}
			problems = append(problems, fmt.Sprintf("%s:%d: value %s has no \"# --\" comment", valuesFile, key.Line, path))
		}
	}
	walk(doc.Content[0], "")
	return problems, documented, nil
}
