set terminal pngcairo size 1150,600 enhanced font 'sans,11'
set output 'experiments/results/synthetic/table1/report/accuracy_vs_bpd.png'
set title 'Synthetic: zero-shot top-1 vs rate (200 held-out classes)' noenhanced
set xlabel 'rate (bits per dimension, as coded)' noenhanced
set ylabel 'zero-shot top-1 accuracy (%)' noenhanced
set grid
set key outside right top box noenhanced
set yrange [40:90]
set offsets graph 0.03, graph 0.03, 0, 0
plot 'experiments/results/synthetic/table1/report/accuracy_vs_bpd.dat' index 0 using 1:2 with linespoints lw 2 pt 5 title 'PQVAE-shared', \
     'experiments/results/synthetic/table1/report/accuracy_vs_bpd.dat' index 1 using 1:2 with linespoints lw 2 pt 6 title 'Learned SQ', \
     83.34 with lines dt 2 lw 2 lc rgb 'black' title 'synthetic upper bound (uncompressed) 83.34%'
