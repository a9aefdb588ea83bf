using DataMarket.Cli.Commands;

return await CliApplication.BuildRootCommand().Parse(args).InvokeAsync();
