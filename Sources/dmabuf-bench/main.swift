import DmaBufCommandLine

Tool.bench.main()
