import DmaBufCommandLine

Tool.pipe.main()
