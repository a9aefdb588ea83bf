using System.Runtime.InteropServices;
using DataMarket.Torch;
using TorchSharp;

namespace DataMarket.Torch.Tests;

public class torch_loads
{
    [Fact]
    public void libtorch_loads_and_computes_on_the_configured_device()
    {
        // No skip: on Debian 12 this fails unless the build's GLIBCXX patch ran on the output's libLibTorchSharp.so.
        var device = TorchRuntime.Initialize("cpu");
        using var a = torch.arange(6, dtype: torch.float32, device: device).reshape(2, 3);
        using var product = torch.matmul(a, a.t());
        Assert.Equal(new float[] { 5, 14, 14, 50 }, product.data<float>().ToArray());
        Assert.Equal(TorchRuntime.IntraOpThreads, torch.get_num_threads());
        Assert.Contains("cpu", TorchRuntime.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void the_built_libtorchsharp_loads_by_itself()
    {
        // Loading the library directly surfaces the dynamic loader's reason (e.g. "GLIBCXX_3.4.32 not found"),
        // which TorchSharp's own exception hides.
        var library = Path.Combine(AppContext.BaseDirectory, "libLibTorchSharp.so");
        Assert.True(File.Exists(library), $"{library} is missing from the test output");
        NativeLibrary.Free(NativeLibrary.Load(library));
    }

    [Fact]
    public void a_second_initialize_cannot_switch_the_device()
    {
        TorchRuntime.Initialize("cpu");
        var error = Assert.Throws<InvalidOperationException>(() => TorchRuntime.Initialize("cuda:3"));
        Assert.Contains("already chosen", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gpu")]
    [InlineData("cuda:x")]
    public void a_device_name_that_is_not_one_is_refused_by_name(string name)
    {
        var error = Assert.Throws<TorchUnavailableException>(() => TorchRuntime.Initialize(name));
        Assert.Contains(name, error.Message, StringComparison.Ordinal);
    }
}
