package pods

import "github.com/pennyhq/penny/aggregator/model"

// GroupInOne is Group summing every pod in one part, as it does for few
// containers: the reference of its parts.
func GroupInOne(cs []model.Container, q Query) []Pod { return podsOf(groupPart(cs, q)) }

// GroupInParts is Group, and the number of parts it summed in.
func GroupInParts(cs []model.Container, q Query) ([]Pod, int) { return groupInParts(cs, q) }
