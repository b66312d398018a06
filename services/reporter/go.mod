module github.com/cmmsflow/cmmsflow/services/reporter

go 1.26.8

require (
	github.com/cmmsflow/cmmsflow/libs v0.0.0
	github.com/cmmsflow/cmmsflow/proto v0.0.0
)

replace github.com/cmmsflow/cmmsflow/libs => ../../libs

replace github.com/cmmsflow/cmmsflow/proto => ../../proto
