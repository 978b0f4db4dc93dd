from vomni_nb.sim.cli import main

raise SystemExit(main())
