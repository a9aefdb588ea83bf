using DataMarket.Gpu.Check;

return GpuCheck.Run(args, Console.Out);
