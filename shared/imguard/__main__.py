from imguard.cli import main

raise SystemExit(main())
