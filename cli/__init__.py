"""gemkit's command line (typer). Thin: parse, call one public function, print."""
