module ckpt.invalid/goroutines

go 1.19
