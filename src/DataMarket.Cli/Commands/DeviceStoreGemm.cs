using DataMarket.Torch.Influence;
using DataMarket.Valuation.Gpu;
using TorchSharp;
using static TorchSharp.torch;

namespace DataMarket.Cli.Commands;

/// <summary>
/// LoGra's scoring GEMM (<see cref="TorchLogra.Gemm"/>) on a valuation device: the preconditioned test gradients go to
/// the device once (scoring passes the same query tensor for every chunk) and each store chunk is multiplied there in
/// float32 by <see cref="GpuScoring"/> (cuBLAS when found, else the tiled kernel). A device that fell back to the CPU
/// keeps libtorch's matmul.
/// </summary>
internal sealed class DeviceStoreGemm(ValuationDevice device) : IDisposable
{
    private GpuScoring? _scoring;
    private Tensor? _queries;

    public Tensor Multiply(Tensor queries, Tensor chunk)
    {
        if (device.Kind == DeviceKind.Cpu)
        {
            return TorchLogra.DefaultGemm(queries, chunk);
        }

        var queryCount = (int)queries.shape[0];
        var dimension = (int)queries.shape[1];
        if (!ReferenceEquals(queries, _queries))
        {
            _scoring?.Dispose();
            using var single = queries.to(float32).contiguous().cpu();
            _scoring = new GpuScoring(device, single.data<float>().ToArray(), queryCount, dimension);
            _queries = queries;
        }

        var rows = (int)chunk.shape[0];
        using var chunkSingle = chunk.to(float32).contiguous().cpu();
        var scores = new float[queryCount * rows];
        _scoring!.ScoreChunk(chunkSingle.data<float>().ToArray(), rows, scores);
        return torch.tensor(scores, [queryCount, rows]).to(queries.dtype);
    }

    public void Dispose() => _scoring?.Dispose();
}
