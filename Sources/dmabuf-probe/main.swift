import DmaBufCommandLine

Tool.probe.main()
