// Test program for ckpt: goroutines across several OS threads, each
// counting into its own file (DIR/gI). Goroutine 0 and 2 are locked to OS
// threads of their own, and every goroutine sleeps in a raw nanosleep
// (which blocks its OS thread), so the runtime runs several threads. Files
// and sleeps use raw system calls: os files and time.Sleep would start the
// runtime's network poller, an epoll fd ckpt does not restore yet.
package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
)

func count(path string, lock bool) {
	if lock {
		runtime.LockOSThread()
	}
	pause := syscall.Timespec{Nsec: 20_000_000}
	for n := 1; ; n++ {
		fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
		if err == nil {
			syscall.Write(fd, []byte(fmt.Sprintf("%d\n", n)))
			syscall.Close(fd)
		}
		syscall.Nanosleep(&pause, nil)
	}
}

func main() {
	dir := os.Args[1]
	for i := 0; i < 4; i++ {
		go count(fmt.Sprintf("%s/g%d", dir, i), i%2 == 0)
	}
	count(dir+"/main", false)
}
