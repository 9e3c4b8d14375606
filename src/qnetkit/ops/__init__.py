"""Operations: reports, plots and the glue the command line uses."""
