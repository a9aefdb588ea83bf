using DataMarket.Cli.Commands;

return await CliApplication.InvokeAsync(args);
